"""The benchmark's reading of the gateway's /metrics histograms (bench/server_metrics.py)."""

from __future__ import annotations

from bench.server_metrics import parse, summary

BEFORE = """\
# TYPE omniroute_request_duration_seconds histogram
omniroute_request_duration_seconds_bucket{provider="openai",le="0.005"} 10
omniroute_request_duration_seconds_bucket{provider="openai",le="0.05"} 10
omniroute_request_duration_seconds_bucket{provider="openai",le="+Inf"} 10
omniroute_request_duration_seconds_sum{provider="openai"} 0.02
omniroute_request_duration_seconds_count{provider="openai"} 10
omniroute_gateway_overhead_seconds_sum{provider="openai"} 0.001
omniroute_gateway_overhead_seconds_count{provider="openai"} 10
"""
# 100 more requests: 60 of them under 5 ms, 39 more under 50 ms, one above (30 of the 100 on
# another provider: label sets add up).
AFTER = """\
omniroute_request_duration_seconds_bucket{provider="openai",le="0.005"} 50
omniroute_request_duration_seconds_bucket{provider="openai",le="0.05"} 79
omniroute_request_duration_seconds_bucket{provider="openai",le="+Inf"} 80
omniroute_request_duration_seconds_bucket{provider="anthropic",le="0.005"} 20
omniroute_request_duration_seconds_bucket{provider="anthropic",le="0.05"} 30
omniroute_request_duration_seconds_bucket{provider="anthropic",le="+Inf"} 30
omniroute_request_duration_seconds_sum{provider="openai"} 1.52
omniroute_request_duration_seconds_sum{provider="anthropic"} 0.5
omniroute_request_duration_seconds_count{provider="openai"} 80
omniroute_request_duration_seconds_count{provider="anthropic"} 30
omniroute_gateway_overhead_seconds_sum{provider="openai"} 0.011
omniroute_gateway_overhead_seconds_count{provider="openai"} 110
omniroute_requests_total{provider="openai",model="gpt-4o",status="200"} 80
"""


def test_the_runs_requests_are_the_difference_of_two_scrapes() -> None:
    server = summary(BEFORE, AFTER)
    assert server["requests"] == 100
    assert server["duration_mean_ms"] == 20.0  # (2.02 - 0.02) s over 100
    assert server["duration_p50_le_ms"] == 5.0  # 60 of 100 within 5 ms
    assert server["duration_p99_le_ms"] == 50.0  # 99 of 100 within 50 ms
    assert server["overhead_mean_ms"] == 0.1  # 0.01 s over 100


def test_a_quantile_past_the_last_finite_bound_has_no_bound() -> None:
    histogram = parse(AFTER, "omniroute_request_duration_seconds")
    assert histogram.bound(0.999) is None
    assert parse("", "omniroute_request_duration_seconds").bound(0.5) is None
