"""Percentile estimates from the fixed log buckets, and the exposition text, without a server."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from gateway.telemetry.exposition import render
from gateway.telemetry.histogram import BOUNDS, MIDPOINTS, SIZE, add_into, bucket_of, dense, estimate, estimated_sum
from tests.usage.prometheus import parse, value
from usage.selectors import percentile

BUCKET_RATIO = 2 ** (1 / 8)


def histogram(values: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for v in values:
        counts[bucket_of(v)] = counts.get(bucket_of(v), 0) + 1
    return counts


def test_buckets_are_log_spaced_and_cover_everything() -> None:
    assert BOUNDS[0] == 2.0**-6 and BOUNDS[48] == 1.0 and BOUNDS[56] == 2.0 and BOUNDS[-1] == 2.0**20
    assert len(BOUNDS) + 1 == SIZE
    assert bucket_of(0.0) == 0 and bucket_of(1.0) == 48 and bucket_of(1.01) == 49
    assert bucket_of(2.0) == 56  # a bound belongs to its own bucket (<=)
    assert bucket_of(10**9) == SIZE - 1


def test_exact_nearest_rank_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0


@pytest.mark.parametrize("seed", range(5))
def test_estimates_are_within_one_bucket_of_the_exact_percentile(seed: int) -> None:
    rng = random.Random(seed)
    values = sorted(rng.lognormvariate(5, 1.2) for _ in range(rng.randint(1, 3000)))
    counts = histogram(values)
    for pct in (50, 90, 95, 99, 100):
        exact, estimated = percentile(values, pct), estimate(counts, pct)
        assert exact is not None and estimated is not None
        assert exact / BUCKET_RATIO <= estimated <= exact * BUCKET_RATIO, (pct, exact, estimated)


def test_estimate_edge_cases() -> None:
    assert estimate({}, 50) is None
    assert estimate({0: 2}, 100) == round(2.0**-6, 3)  # the first bucket starts at 0: linear
    assert estimate({0: 4}, 50) == round(2.0**-7, 3)
    assert estimate({SIZE - 1: 1}, 50) == BOUNDS[-1]  # overflow: its lower bound


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_mean_from_bucket_midpoints_is_within_half_a_bucket(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(5, 1.2) for _ in range(rng.randint(1, 3000))]
    estimated = estimated_sum(dense(histogram(values))) / len(values)
    exact = sum(values) / len(values)
    assert abs(estimated - exact) <= exact * (BUCKET_RATIO - 1) / 2, (exact, estimated)
    inner = zip(pairwise(BOUNDS), MIDPOINTS[1:-1], strict=True)
    assert len(MIDPOINTS) == SIZE and all(lower < mid < upper for (lower, upper), mid in inner)
    assert (MIDPOINTS[0], MIDPOINTS[-1], estimated_sum([])) == (BOUNDS[0] / 2, BOUNDS[-1], 0)


def test_histograms_merge_by_adding_dense_and_sparse() -> None:
    a, b = histogram([1.5, 3.0, 3.0]), histogram([3.0, 100.0])
    stored = dense(a)  # what a roll-up row keeps
    assert stored[bucket_of(3.0)] == 2 and len(stored) == bucket_of(3.0) + 1
    total: dict[int, int] = {}
    add_into(total, stored)
    add_into(total, b)
    assert total == histogram([1.5, 3.0, 3.0, 3.0, 100.0])


def test_render_is_valid_exposition_text() -> None:
    pm = (("provider", "openai"), ("model", 'we"ird\\model\n'))
    counters = {
        ("omniroute_requests_total", (*pm, ("status", "200"))): 3.0,
        ("omniroute_cost_usd_total", pm): 0.000015,
        ("omniroute_request_duration_seconds_bucket", (("provider", "openai"), ("le", "0.05"))): 2.0,
        ("omniroute_request_duration_seconds_bucket", (("provider", "openai"), ("le", "+Inf"))): 1.0,
        ("omniroute_request_duration_seconds_sum", (("provider", "openai"),)): 400.1,
    }
    text = render(counters, gauges={"omniroute_gateway_processes": ("Processes.", (), 2.0)})
    families = parse(text)
    labels = {"provider": "openai", "model": 'we"ird\\model\n'}
    assert value(families, "omniroute_requests_total", **labels, status="200") == 3
    assert value(families, "omniroute_cost_usd_total", **labels) == pytest.approx(0.000015)
    assert value(families, "omniroute_request_duration_seconds_bucket", provider="openai", le="0.025") == 0
    assert value(families, "omniroute_request_duration_seconds_bucket", provider="openai", le="0.05") == 2
    assert value(families, "omniroute_request_duration_seconds_bucket", provider="openai", le="300.0") == 2
    assert value(families, "omniroute_request_duration_seconds_count", provider="openai") == 3
    assert value(families, "omniroute_gateway_processes") == 2
    assert families["omniroute_errors_total"].type == "counter"  # declared even before any error


@pytest.mark.parametrize(
    "broken",
    [
        "x 1\n",  # no TYPE
        "# TYPE x counter\nx{a=b} 1\n",  # unquoted label value
        "# TYPE x counter\nx 1,5\n",
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 0\n',
        "# TYPE x counter\nx 1",  # no final newline
    ],
)
def test_the_test_parser_is_strict(broken: str) -> None:
    with pytest.raises(ValueError):
        parse(broken)
