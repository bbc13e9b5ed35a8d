"""A strict parser of the Prometheus text exposition format (0.0.4), for the tests.

prometheus_client is not a dependency; this follows the format's grammar and rejects what
Prometheus would: a sample without a preceding TYPE, a family declared twice, bad label
syntax or escapes, unparsable values, and histograms whose buckets are not cumulative, lack
`+Inf`, or disagree with `_count`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^(?P<name>{_NAME})(?:\{{(?P<labels>.*)\}})? (?P<value>\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    type: str
    help: str = ""
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)


def _labels(text: str | None) -> Labels:
    if not text:
        return ()
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if match is None:
            raise ValueError(f"bad labels: {text!r}")
        value = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), match[2])
        out.append((match[1], value))
        pos = match.end()
    names = [k for k, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"repeated label: {text!r}")
    return tuple(out)


def _value(text: str) -> float:
    if text in {"+Inf", "-Inf", "NaN"}:
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ValueError(f"bad value: {text!r}")
    return float(text)


def _family_of(name: str, families: dict[str, Family]) -> Family:
    if name in families:
        return families[name]
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and base in families and families[base].type in {"histogram", "summary"}:
            return families[base]
    raise ValueError(f"sample {name} without a TYPE line")


def parse(text: str) -> dict[str, Family]:
    if not text.endswith("\n"):
        raise ValueError("the exposition must end with a newline")
    families: dict[str, Family] = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            families.setdefault(name, Family(name, "untyped")).help = help_text
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            if kind not in _TYPES or (name in families and families[name].samples):
                raise ValueError(f"bad TYPE line: {line!r}")
            families.setdefault(name, Family(name, kind)).type = kind
        elif line.startswith("#"):
            continue
        else:
            match = _SAMPLE.match(line)
            if match is None:
                raise ValueError(f"bad sample line: {line!r}")
            family = _family_of(match["name"], families)
            key = (match["name"], _labels(match["labels"]))
            if key in family.samples:
                raise ValueError(f"duplicate sample: {line!r}")
            family.samples[key] = _value(match["value"])
    for family in families.values():
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family: Family) -> None:
    series: dict[Labels, list[tuple[float, float]]] = {}
    for (name, labels), value in family.samples.items():
        if name == f"{family.name}_bucket":
            rest = tuple(kv for kv in labels if kv[0] != "le")
            series.setdefault(rest, []).append((_value(dict(labels)["le"]), value))
    for labels, buckets in series.items():
        buckets.sort()
        if not buckets or not math.isinf(buckets[-1][0]):
            raise ValueError(f"{family.name}{labels}: no +Inf bucket")
        counts = [count for _, count in buckets]
        if counts != sorted(counts):
            raise ValueError(f"{family.name}{labels}: buckets not cumulative")
        if family.samples.get((f"{family.name}_count", labels)) != counts[-1]:
            raise ValueError(f"{family.name}{labels}: _count differs from the +Inf bucket")
        if (f"{family.name}_sum", labels) not in family.samples:
            raise ValueError(f"{family.name}{labels}: no _sum")


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    """A sample's value (0 when absent: counters start at zero)."""
    for family in families.values():
        for (sample, sample_labels), v in family.samples.items():
            if sample == name and dict(sample_labels) == labels:
                return v
    return 0.0
