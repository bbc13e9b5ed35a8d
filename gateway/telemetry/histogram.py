"""Fixed log-spaced latency buckets, shared by the live telemetry and the hourly roll-ups.

Every histogram in OmniRoute uses the same bucket bounds, so histograms from different
processes, minutes and hours merge by adding counts index by index, and percentiles are
estimated from the merged counts. Bucket `i` counts values `<= BOUNDS[i]` (and above the
previous bound); the last bucket counts everything above the largest bound.

Bounds grow by 2^(1/8) (~9 %) from 2^-6 ms (~16 µs) to 2^20 ms (~17.5 min): 209 bounds plus
the overflow bucket. An estimate is therefore within ~9 % of the exact nearest-rank percentile.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise

STEPS_PER_DOUBLING = 8
LOWEST_EXPONENT, HIGHEST_EXPONENT = -6, 20
BOUNDS: tuple[float, ...] = tuple(
    2 ** (i / STEPS_PER_DOUBLING)
    for i in range(LOWEST_EXPONENT * STEPS_PER_DOUBLING, HIGHEST_EXPONENT * STEPS_PER_DOUBLING + 1)
)
SIZE = len(BOUNDS) + 1  # + the overflow bucket
# What a value in bucket i is taken to be when summing or averaging: the middle of the
# bucket's bounds (0 is the lower bound of the first one). The overflow bucket has no upper
# bound; its values count as the largest bound, as in `estimate`.
MIDPOINTS: tuple[float, ...] = (
    BOUNDS[0] / 2,
    *((lower + upper) / 2 for lower, upper in pairwise(BOUNDS)),
    BOUNDS[-1],
)


def bucket_of(ms: float) -> int:
    """Index of the bucket that counts `ms`."""
    return bisect_left(BOUNDS, ms)


def dense(counts: Mapping[int, int]) -> list[int]:
    """A sparse {index: count} as a JSON-friendly list, trailing zero buckets dropped."""
    if not counts:
        return []
    out = [0] * (max(counts) + 1)
    for index, count in counts.items():
        out[index] += count
    return out


def add_into(total: dict[int, int], counts: Mapping[int, int] | Sequence[int]) -> None:
    """Add a histogram (sparse or dense) into the sparse `total`."""
    items: Iterable[tuple[int, int]] = counts.items() if isinstance(counts, Mapping) else enumerate(counts)
    for index, count in items:
        if count:
            total[index] = total.get(index, 0) + count


def estimated_sum(counts: Sequence[int]) -> float:
    """The sum of the values a dense histogram counts, each taken as its bucket's midpoint.

    Histograms keep no sums (the hourly roll-ups, for one), so a mean is estimated as
    `estimated_sum / count`. Every value is off by at most half its bucket's width (~4.5 %
    of it; ~8 µs in the first bucket), so the mean is too, values above the largest bound
    aside.
    """
    return sum(count * MIDPOINTS[index] for index, count in enumerate(counts) if count)


def estimate(counts: Mapping[int, int], pct: float) -> float | None:
    """The nearest-rank percentile estimated from bucket counts, in ms; None when empty.

    The rank's bucket is found exactly; inside it the value is interpolated geometrically
    (linearly in the first bucket, which starts at 0), assuming the bucket's values are
    spread evenly on a log scale. Values in the overflow bucket are reported as its lower
    bound.
    """
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(pct / 100 * total))
    seen = 0
    for index in sorted(counts):
        count = counts[index]
        if seen + count >= rank:
            if index >= len(BOUNDS):
                return round(BOUNDS[-1], 3)
            position = (rank - seen) / count
            upper = BOUNDS[index]
            if index == 0:
                return round(upper * position, 3)
            lower = BOUNDS[index - 1]
            return round(lower * (upper / lower) ** position, 3)
        seen += count
    return round(BOUNDS[-1], 3)  # pragma: no cover - ranks never exceed the total
