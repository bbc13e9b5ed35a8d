"""What the gateway says about its own requests: its Prometheus `/metrics`, read before and
after a measured run.

wrk times a request from the client's side, queueing included. The gateway's histograms
time it from the moment the application starts on it to its last byte
(`omniroute_request_duration_seconds`) and count the part spent outside the upstream
(`omniroute_gateway_overhead_seconds`). The difference between the two views is time the
request spent waiting outside the handler (socket queues, the event loop's backlog, the
load generator). Percentiles from a histogram are bucket bounds: "p99 <= 50 ms".
"""

from __future__ import annotations

import math
import re
import time
import urllib.request
from dataclasses import dataclass

DURATION = "omniroute_request_duration_seconds"
OVERHEAD = "omniroute_gateway_overhead_seconds"
# Metrics are shared between processes about once a second (docs/API.md §10).
SETTLE_SECONDS = 2.5
_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


@dataclass(frozen=True)
class Histogram:
    """One histogram summed over its label sets (other than `le`)."""

    buckets: dict[float, float]  # upper bound -> cumulative count
    total: float
    count: float

    def minus(self, before: Histogram) -> Histogram:
        return Histogram(
            {le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
            self.total - before.total,
            self.count - before.count,
        )

    def bound(self, quantile: float) -> float | None:
        """The upper bound of the bucket holding the quantile, in seconds (None when empty
        or above the largest finite bound)."""
        if self.count <= 0:
            return None
        rank = quantile * self.count
        for le in sorted(self.buckets):
            if self.buckets[le] >= rank:
                return None if math.isinf(le) else le
        return None

    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None


def parse(text: str, name: str) -> Histogram:
    buckets: dict[float, float] = {}
    total = count = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or not match["name"].startswith(name):
            continue
        value = float(match["value"])
        suffix = match["name"][len(name) :]
        if suffix == "_bucket":
            le = re.search(r'le="([^"]+)"', match["labels"] or "")
            if le:
                bound = float(le.group(1))
                buckets[bound] = buckets.get(bound, 0.0) + value
        elif suffix == "_sum":
            total += value
        elif suffix == "_count":
            count += value
    return Histogram(buckets, total, count)


def scrape(base_url: str, admin_key: str) -> str:
    request = urllib.request.Request(base_url + "/metrics", headers={"Authorization": f"Bearer {admin_key}"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return str(response.read().decode())


def settled_scrape(base_url: str, admin_key: str) -> str:
    time.sleep(SETTLE_SECONDS)
    return scrape(base_url, admin_key)


def summary(before: str, after: str) -> dict[str, float | None]:
    """Server-side view of the requests between two scrapes, in ms."""
    duration = parse(after, DURATION).minus(parse(before, DURATION))
    overhead = parse(after, OVERHEAD).minus(parse(before, OVERHEAD))

    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 3)

    return {
        "requests": duration.count,
        "duration_mean_ms": ms(duration.mean()),
        "duration_p50_le_ms": ms(duration.bound(0.50)),
        "duration_p99_le_ms": ms(duration.bound(0.99)),
        "overhead_mean_ms": ms(overhead.mean()),
    }
