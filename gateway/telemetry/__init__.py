"""Live telemetry of the gateway processes: Prometheus counters and recent latency
histograms, aggregated across processes (see collector.py and sinks.py), and the hourly
roll-up thread of embedded mode (rollups.py)."""

from .collector import collector
from .rollups import start_rollup_thread


def start_background() -> None:
    """At start-up: the publishing thread (heartbeats count the process in /metrics) and,
    when configured, the in-process hourly roll-up."""
    collector.start()
    start_rollup_thread()


def stop_background() -> None:
    """At shutdown, after the recorder's last batch: publish what is left."""
    collector.stop()


__all__ = ["collector", "start_background", "stop_background"]
