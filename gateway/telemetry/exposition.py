"""The Prometheus text exposition format (version 0.0.4), written by hand: no dependency.

Histogram buckets are counted per bucket (one increment per observation) and made
cumulative here; every bound is written, `+Inf` equals `_count`.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from .collector import HISTOGRAMS, Labels, SeriesKey

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

COUNTERS = {
    "omniroute_requests_total": "Requests to the client API (/v1) by resolved provider, model and HTTP status.",
    "omniroute_errors_total": "Requests answered with a status of 400 or more (499: the client went away).",
    "omniroute_tokens_total": "Tokens reported by providers, by type (prompt includes cached and cache_creation; "
    "completion includes reasoning).",
    "omniroute_cost_usd_total": "Cost in USD of the requests, from the price table.",
}
HISTOGRAM_HELP = {
    "omniroute_request_duration_seconds": "End-to-end duration of client API requests as the gateway saw them.",
    "omniroute_ttfb_seconds": "Time from the request's arrival to the first byte of the upstream answer relayed.",
    "omniroute_gateway_overhead_seconds": "Request duration minus the time spent in upstream attempts: parsing, "
    "auth, routing and translation (requests that reached a provider).",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(counters: dict[SeriesKey, float], *, gauges: dict[str, tuple[str, Labels, float]]) -> str:
    """The exposition text of the summed counters plus `gauges` {name: (help, labels, value)}."""
    lines: list[str] = []
    by_name: dict[str, list[tuple[Labels, float]]] = defaultdict(list)
    for (name, labels), value in counters.items():
        by_name[name].append((labels, value))
    for name, help_text in COUNTERS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        lines += [f"{name}{_labels(labels)} {_number(v)}" for labels, v in sorted(by_name.get(name, []))]
    for name, bounds in HISTOGRAMS.items():
        lines += [f"# HELP {name} {HISTOGRAM_HELP[name]}", f"# TYPE {name} histogram"]
        per_series: dict[Labels, dict[str, float]] = defaultdict(dict)
        for labels, count in by_name.get(f"{name}_bucket", []):
            le = dict(labels)["le"]
            per_series[tuple(kv for kv in labels if kv[0] != "le")][le] = count
        sums = dict(by_name.get(f"{name}_sum", []))
        for labels in sorted(per_series):
            counts, cumulative = per_series[labels], 0.0
            for le in [*(repr(b) for b in bounds), "+Inf"]:
                cumulative += counts.get(le, 0.0)
                lines.append(f"{name}_bucket{_labels((*labels, ('le', le)))} {_number(cumulative)}")
            lines.append(f"{name}_sum{_labels(labels)} {_number(sums.get(labels, 0.0))}")
            lines.append(f"{name}_count{_labels(labels)} {_number(cumulative)}")
    for name, (help_text, labels, value) in gauges.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{_labels(labels)} {_number(value)}"]
    return "\n".join(lines) + "\n"


def metrics_text() -> str:
    """The deployment's metrics: every gateway process's counters, summed by the sink."""
    from django.conf import settings

    from .collector import collector

    collector.publish_quietly()  # this process's latest requests first
    sink = collector.sink
    gauges = {
        "omniroute_info": ("OmniRoute version and the aggregation in use.", _info(settings), 1.0),
        "omniroute_gateway_processes": (
            "Gateway processes alive (Redis: a heartbeat in the last 15 s; files: a live pid).",
            (),
            float(sink.processes()),
        ),
    }
    return render(sink.counters(), gauges=gauges)


@lru_cache(maxsize=1)
def _version() -> str:
    try:
        with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _info(settings: object) -> Labels:
    return (("version", _version()), ("aggregation", "redis" if getattr(settings, "REDIS_URL", "") else "files"))
