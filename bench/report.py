"""Ratios, PASS/MISS against the targets of issue #3, the printed table and the JSON file.

The gateway is compared with the direct upstream, with the bare proxy (bench/bare_proxy.py,
the floor for any Python proxy) and with LiteLLM. Two of the issue's targets are stated
against the direct upstream but cannot be met by any proxy while the upstream is >= 3x
faster than it (which the benchmark requires); they are printed as information, and the
checks apply the issue's intent ("land near the bare proxy") to the bare proxy instead.

`results` is the plain dict that run.py fills and that is written as JSON:

    results["systems"][name]["json"]["32"]   -> WrkResult.to_json()  (non-stream, c=32)
    results["systems"][name]["stream"]       -> StreamResult.to_json()
    results["systems"][name]["rss_mb"]       -> RSS of the serving processes after its scenarios
    results["memory"]                        -> samples of the 100k-request run of the gateway
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Column order of the table; a system that did not run is left out.
SYSTEMS = [
    ("direct", "direct upstream"),
    ("bare", "bare proxy"),
    ("gateway", "gateway"),
    ("gateway_2w", "gateway 2 workers"),
    ("gateway_pg", "gateway PG+Redis"),
    ("litellm", "LiteLLM"),
]
CONCURRENCIES = ("1", "32", "128")


@dataclass
class Check:
    name: str
    value: str
    target: str
    passed: bool | None  # None: not measured in this run
    note: str = ""

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "MISS")


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _rps(results: dict[str, Any], system: str, c: str) -> float | None:
    return _get(results, "systems", system, "json", c, "rps")


def _lat(results: dict[str, Any], system: str, c: str, pct: str) -> float | None:
    return _get(results, "systems", system, "json", c, "latency_ms", pct)


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _sub(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def system_errors(system: dict[str, Any]) -> int:
    total = sum(int(run.get("error_count", 0)) for run in (system.get("json") or {}).values())
    total += int((system.get("stream") or {}).get("errors", 0))
    return total


# The systems that stand between the client and the upstream, in table order.
PROXIES = [
    ("bare", "bare proxy"),
    ("gateway", "gateway"),
    ("gateway_pg", "gateway PG+Redis"),
    ("litellm", "LiteLLM"),
]
GATEWAYS = [("gateway", ""), ("gateway_pg", " [PG+Redis]")]
# Marks the two checks that replace the vs-direct targets (see vs_direct_information).
DERIVED = " *"


def compute_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Per proxy: against the direct upstream, against the bare proxy and against LiteLLM."""
    ratios: dict[str, Any] = {}
    for key, _ in PROXIES:
        if key not in results["systems"]:
            continue
        r: dict[str, Any] = {}
        for c in CONCURRENCIES:
            r[f"throughput_vs_direct_c{c}"] = _div(_rps(results, key, c), _rps(results, "direct", c))
            r[f"throughput_vs_litellm_c{c}"] = _div(_rps(results, key, c), _rps(results, "litellm", c))
            r[f"added_p50_ms_c{c}"] = _sub(_lat(results, key, c, "p50"), _lat(results, "direct", c, "p50"))
            r[f"added_p99_ms_c{c}"] = _sub(_lat(results, key, c, "p99"), _lat(results, "direct", c, "p99"))
            r[f"p99_vs_direct_c{c}"] = _div(_lat(results, key, c, "p99"), _lat(results, "direct", c, "p99"))
            if key != "bare":
                r[f"throughput_vs_bare_c{c}"] = _div(_rps(results, key, c), _rps(results, "bare", c))
                r[f"added_p50_vs_bare_ms_c{c}"] = _sub(_lat(results, key, c, "p50"), _lat(results, "bare", c, "p50"))
                r[f"added_p99_vs_bare_ms_c{c}"] = _sub(_lat(results, key, c, "p99"), _lat(results, "bare", c, "p99"))
                r[f"p99_vs_bare_c{c}"] = _div(_lat(results, key, c, "p99"), _lat(results, "bare", c, "p99"))
        for kind in ("ttfb", "total"):
            for pct in ("p50", "p99"):
                mine = _get(results, "systems", key, "stream", f"{kind}_ms", pct)
                direct = _get(results, "systems", "direct", "stream", f"{kind}_ms", pct)
                r[f"stream_added_{kind}_{pct}_ms"] = _sub(mine, direct)
                if key != "bare":
                    bare = _get(results, "systems", "bare", "stream", f"{kind}_ms", pct)
                    r[f"stream_added_{kind}_vs_bare_{pct}_ms"] = _sub(mine, bare)
        # How many times faster the upstream is than this system (name kept from earlier results).
        r["upstream_vs_gateway_c32"] = _div(_rps(results, "direct", "32"), _rps(results, key, "32"))
        r["rss_vs_litellm"] = _div(
            _get(results, "systems", key, "rss_mb"), _get(results, "systems", "litellm", "rss_mb")
        )
        ratios[key] = r
    if "gateway_2w" in results["systems"]:
        ratios["scaling_2w_vs_1w"] = {
            f"c{c}": _div(_rps(results, "gateway_2w", c), _rps(results, "gateway", c)) for c in ("32", "128")
        }
    memory = results.get("memory")
    if memory and memory.get("rss_mb_100k") and memory.get("rss_mb_20k"):
        ratios["memory_growth_20k_100k"] = memory["rss_mb_100k"] / memory["rss_mb_20k"] - 1
    return ratios


def _upstream_speed_check(results: dict[str, Any], key: str, label: str) -> Check:
    speed = results["ratios"][key]["upstream_vs_gateway_c32"]
    return Check(
        f"fake upstream >= 3x {label} (c=32)",
        _fmt(speed, 1, "x"),
        ">= 3x",
        None if speed is None else speed >= 3,
        "the measurement is valid only if the upstream is not the bottleneck",
    )


def _sanity_checks(results: dict[str, Any], key: str, label: str, extra_errors: int = 0) -> list[Check]:
    """No errors, and the upstream really answered every measured request."""
    system = results["systems"][key]
    errors = system_errors(system) + extra_errors
    checks = [Check(f"errors{label}", str(errors), "0", errors == 0)]
    calls = system.get("upstream_calls_during_non_stream")
    sent = system.get("measured_non_stream_requests")
    if calls is not None and sent is not None:
        checks.append(
            Check(
                f"upstream called for every request{label}",
                f"{calls:,} calls / {sent:,} req",
                "calls >= requests",
                calls >= sent,
                "answered without calling the upstream (cache?): throughput is not comparable",
            )
        )
    return checks


def compute_checks(results: dict[str, Any]) -> list[Check]:
    ratios = results["ratios"]
    checks: list[Check] = []
    if "bare" in ratios:
        checks.append(_upstream_speed_check(results, "bare", "bare proxy"))
        checks.extend(_sanity_checks(results, "bare", " [bare proxy]"))
    bare_rps = _rps(results, "bare", "32")
    bare_p99 = _lat(results, "bare", "32", "p99")
    for gw, label in GATEWAYS:
        if gw not in ratios:
            continue
        r = ratios[gw]
        checks.append(_upstream_speed_check(results, gw, "gateway" + label))
        added = r["added_p50_ms_c1"]
        checks.append(
            Check(f"added p50 latency vs direct, c=1{label}", _fmt(added, 3, " ms"), "<= 1 ms", _le(added, 1.0))
        )
        gw_rps = _rps(results, gw, "32")
        share = r["throughput_vs_bare_c32"]
        checks.append(
            Check(
                f"throughput vs bare proxy, c=32{label}{DERIVED}",
                _fmt(_pct(share), 1, "%") + f" ({_fmt(gw_rps, 0)} vs {_fmt(bare_rps, 0)} req/s)",
                ">= 40% of bare proxy",
                None if share is None else share >= 0.40,
                "the gateway spends more than 2.5x the bare proxy's time per request (1 / 40%): profile its hot path",
            )
        )
        p99x = r["p99_vs_bare_c32"]
        gw_p99 = _lat(results, gw, "32", "p99")
        # A closed loop of 32 connections has mean latency = 32 / throughput (Little's law).
        needed = 32 / (3 * bare_p99 / 1000) if bare_p99 else None
        checks.append(
            Check(
                f"p99 vs bare proxy p99, c=32{label}{DERIVED}",
                _fmt(p99x, 1, "x") + f" ({_fmt(gw_p99)} vs {_fmt(bare_p99)} ms)",
                "<= 3x bare proxy",
                _le(p99x, 3.0),
                f"tail latency: 32 connections at <= {_fmt(3 * bare_p99 if bare_p99 else None)} ms each need "
                f">= {_fmt(needed, 0)} req/s (Little's law) and no stalls; measured {_fmt(gw_rps, 0)} req/s",
            )
        )
        vs_litellm = r["throughput_vs_litellm_c32"]
        checks.append(
            Check(
                f"throughput vs LiteLLM, c=32{label}",
                _fmt(vs_litellm, 1, "x"),
                ">= 20x LiteLLM",
                None if vs_litellm is None else vs_litellm >= 20,
            )
        )
        ttfb = r["stream_added_ttfb_p50_ms"]
        checks.append(Check(f"stream added TTFB p50 vs direct{label}", _fmt(ttfb, 3, " ms"), "<= 2 ms", _le(ttfb, 2.0)))
        extra = 0
        if gw == "gateway" and "gateway_2w" in results["systems"]:
            extra = system_errors(results["systems"]["gateway_2w"])
        checks.extend(_sanity_checks(results, gw, label, extra))
    memory = results.get("memory")
    if memory:
        rss = memory.get("rss_mb_100k")
        checks.append(
            Check(
                "gateway RSS after 100k requests",
                _fmt(rss, 1, " MB") + f" ({memory.get('requests_at_100k', 0):,} req)",
                "<= 150 MB",
                _le(rss, 150.0),
            )
        )
        growth = ratios.get("memory_growth_20k_100k")
        checks.append(
            Check(
                "gateway RSS growth 20k -> 100k",
                _fmt(None if growth is None else growth * 100, 1, "%"),
                "<= 5%",
                _le(growth, 0.05),
            )
        )
        checks.append(
            Check("errors during the 100k run", str(memory.get("errors", 0)), "0", memory.get("errors", 0) == 0)
        )
    return checks


def vs_direct_information(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's two vs-direct targets, measured and printed, but not judged: with a valid
    (>= 3x faster) upstream no proxy can meet them. The note says why, with this run's numbers."""
    ratios = results["ratios"]
    rows: list[dict[str, Any]] = []
    for key, label in PROXIES[:3]:
        r = ratios.get(key)
        if not r:
            continue
        rows.append(
            {
                "system": label,
                "throughput_vs_direct_c32": r["throughput_vs_direct_c32"],
                "p99_vs_direct_c32": r["p99_vs_direct_c32"],
            }
        )
    direct_rps = _rps(results, "direct", "32")
    direct_p99 = _lat(results, "direct", "32", "p99")
    bare_rps = _rps(results, "bare", "32")
    speed_bare = _div(direct_rps, bare_rps)
    speed_gw = _div(direct_rps, _rps(results, "gateway", "32"))
    needed = 32 / (3 * direct_p99 / 1000) if direct_p99 else None
    note = (
        "The issue's targets 'throughput at c=32 >= 40% of direct' and 'p99 at c=32 <= 3x direct p99' are "
        "printed for information only. The benchmark requires the fake upstream to be >= 3x faster than "
        "the proxy under test, so that the upstream is never the bottleneck; a proxy then serves at most "
        "1/3 of direct (33%) by construction, and the faster the upstream, the lower that ceiling: here "
        f"the upstream is {_fmt(speed_bare, 0, 'x')} faster than the bare proxy and {_fmt(speed_gw, 0, 'x')} "
        f"faster than the gateway, so even the bare proxy reaches {_fmt(_pct(_div(bare_rps, direct_rps)), 1, '%')} "
        "of direct. Likewise, 32 connections in a closed loop wait 32 / throughput on average (Little's law): "
        f"a p99 <= 3x direct p99 ({_fmt(3 * direct_p99 if direct_p99 else None)} ms) needs >= "
        f"{_fmt(needed, 0)} req/s, {_fmt(_div(needed, bare_rps), 1, 'x')} what the bare proxy serves"
        + (
            " (within reach in this run only because direct's p99 is unusually high: noise). "
            if needed is not None and bare_rps is not None and needed <= bare_rps
            else ". "
        )
        + "The checks marked * apply the issue's intent ('our gateway must land near the bare proxy') "
        "to the bare proxy measured in the same run instead."
    )
    return {
        "original_targets": {"throughput_vs_direct_c32": ">= 0.40", "p99_vs_direct_c32": "<= 3.0"},
        "rows": rows,
        "note": note,
    }


def _le(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


# --- text table ------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(widths[i + 1]) for i, cell in enumerate(cells[1:])]
        return "  ".join([first, *rest]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(row) for row in rows)])


def _wrap(text: str, width: int = 100, indent: str = "  ") -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent)


def render(results: dict[str, Any]) -> str:
    systems = [(key, label) for key, label in SYSTEMS if key in results["systems"]]
    headers = ["scenario", *(label for _, label in systems)]
    rows: list[list[str]] = []

    def row(title: str, getter: Any) -> None:
        values = [getter(results["systems"][key]) for key, _ in systems]
        if any(v != "-" for v in values):
            rows.append([title, *values])

    for c in CONCURRENCIES:
        row(f"non-stream c={c}  req/s", lambda s, c=c: _fmt(_get(s, "json", c, "rps"), 0))
        row(f"non-stream c={c}  p50 ms", lambda s, c=c: _fmt(_get(s, "json", c, "latency_ms", "p50"), 2))
        row(f"non-stream c={c}  p99 ms", lambda s, c=c: _fmt(_get(s, "json", c, "latency_ms", "p99"), 2))
        row(f"non-stream c={c}  errors", lambda s, c=c: _fmt(_get(s, "json", c, "error_count"), 0))
        row(
            f"non-stream c={c}  server p50/p99 <= ms",
            lambda s, c=c: _server_bounds(_get(s, "json", c, "server")),
        )
        row(
            f"non-stream c={c}  server overhead ms",
            lambda s, c=c: _fmt(_get(s, "json", c, "server", "overhead_mean_ms"), 3),
        )
    for kind in ("ttfb", "total"):
        for pct in ("p50", "p99"):
            row(f"stream {kind} {pct} ms", lambda s, k=kind, p=pct: _fmt(_get(s, "stream", f"{k}_ms", p), 2))
    row("stream requests / errors", lambda s: _stream_counts(s))
    row("RSS MB (serving processes)", lambda s: _fmt(_get(s, "rss_mb"), 1))

    out = [_table(headers, rows)]

    ratios = results["ratios"]
    direct_rows: list[list[str]] = []
    for key, label in PROXIES:
        r = ratios.get(key)
        if not r:
            continue
        for c in CONCURRENCIES:
            direct_rows.append(
                [
                    f"{label} c={c}",
                    _fmt(_pct(r[f"throughput_vs_direct_c{c}"]), 1, "%"),
                    _fmt(r[f"added_p50_ms_c{c}"], 3),
                    _fmt(r[f"added_p99_ms_c{c}"], 3),
                    _fmt(r[f"p99_vs_direct_c{c}"], 1, "x"),
                    "" if key == "litellm" else _fmt(r[f"throughput_vs_litellm_c{c}"], 1, "x"),
                ]
            )
        for kind in ("ttfb", "total"):
            direct_rows.append(
                [
                    f"{label} stream {kind.upper() if kind == 'ttfb' else kind}",
                    "",
                    _fmt(r[f"stream_added_{kind}_p50_ms"], 3),
                    _fmt(r[f"stream_added_{kind}_p99_ms"], 3),
                    "",
                    "",
                ]
            )
    if direct_rows:
        out.append("")
        out.append(
            _table(
                ["vs direct upstream", "throughput", "added p50 ms", "added p99 ms", "p99 ratio", "thr / LiteLLM"],
                direct_rows,
            )
        )

    bare_rows: list[list[str]] = []
    if "bare" in ratios:
        for key, label in PROXIES[1:]:
            r = ratios.get(key)
            if not r:
                continue
            for c in CONCURRENCIES:
                bare_rows.append(
                    [
                        f"{label} c={c}",
                        _fmt(_pct(r[f"throughput_vs_bare_c{c}"]), 1, "%"),
                        _fmt(r[f"added_p50_vs_bare_ms_c{c}"], 3),
                        _fmt(r[f"added_p99_vs_bare_ms_c{c}"], 3),
                        _fmt(r[f"p99_vs_bare_c{c}"], 1, "x"),
                    ]
                )
            for kind in ("ttfb", "total"):
                bare_rows.append(
                    [
                        f"{label} stream {kind.upper() if kind == 'ttfb' else kind}",
                        "",
                        _fmt(r[f"stream_added_{kind}_vs_bare_p50_ms"], 3),
                        _fmt(r[f"stream_added_{kind}_vs_bare_p99_ms"], 3),
                        "",
                    ]
                )
    if bare_rows:
        out.append("")
        out.append(_table(["vs bare proxy", "throughput", "added p50 ms", "added p99 ms", "p99 ratio"], bare_rows))

    extra: list[str] = []
    scaling = ratios.get("scaling_2w_vs_1w")
    if scaling:
        extra.append("2 workers vs 1: " + ", ".join(f"{k} {_fmt(v, 2, 'x')}" for k, v in scaling.items()))
    memory = results.get("memory")
    if memory:
        extra.append(
            "gateway memory: "
            + ", ".join(
                f"{_fmt(memory.get(f'rss_mb_{tag}'), 1)} MB after {memory.get(f'requests_at_{tag}', 0):,} req"
                for tag in ("warm", "20k", "100k")
            )
        )
    for gw in ("gateway", "gateway_pg"):
        rss_ratio = (ratios.get(gw) or {}).get("rss_vs_litellm")
        if rss_ratio is not None:
            extra.append(f"{gw} RSS / LiteLLM RSS: {_fmt(rss_ratio, 2, 'x')}")
    if extra:
        out.append("")
        out.extend(extra)

    checks = [Check(**c) for c in results["checks"]]
    out.append("")
    out.append(
        _table(
            ["check", "measured", "target", "result"],
            [[c.name, c.value, c.target, c.verdict] for c in checks],
        )
    )
    if any(c.name.endswith(DERIVED) for c in checks):
        out.append(
            "*  replaces the issue's vs-direct target (>= 40% of direct; <= 3x direct p99), unattainable "
            "with a valid upstream: see below"
        )

    info = results.get("vs_direct_information")
    if info and info["rows"]:
        out.append("")
        out.append("vs direct, for information (the issue's original targets; not judged):")
        for item in info["rows"]:
            out.append(
                f"  {item['system']}: throughput at c=32 {_fmt(_pct(item['throughput_vs_direct_c32']), 1, '%')} "
                f"of direct (issue: >= 40%), p99 at c=32 {_fmt(item['p99_vs_direct_c32'], 1, 'x')} "
                "direct p99 (issue: <= 3x)"
            )
        out.extend(_wrap(info["note"]))

    notes = [f"- {c.name}: {c.note}" for c in checks if c.note and c.passed is False]
    notes += [f"- {n}" for n in results.get("notes", [])]
    if notes:
        out.append("")
        out.append("Notes:")
        out.extend(notes)
    return "\n".join(out)


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def _server_bounds(server: dict[str, Any] | None) -> str:
    """The gateway's own p50/p99 bucket bounds (its /metrics histogram), e.g. "10 / 50"."""
    if not server or server.get("duration_p50_le_ms") is None:
        return "-"
    p99 = server.get("duration_p99_le_ms")
    return f"{server['duration_p50_le_ms']:g} / {'>max' if p99 is None else format(p99, 'g')}"


def _stream_counts(system: dict[str, Any]) -> str:
    stream = system.get("stream")
    if not stream:
        return "-"
    return f"{stream['requests']} / {stream['errors']}"


def finish(results: dict[str, Any], results_dir: Path, stamp: str) -> tuple[str, Path]:
    """Fill ratios and checks, write the JSON file; the table and the file's path."""
    results["ratios"] = compute_ratios(results)
    results["checks"] = [asdict(c) for c in compute_checks(results)]
    results["vs_direct_information"] = vs_direct_information(results)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return render(results), path
