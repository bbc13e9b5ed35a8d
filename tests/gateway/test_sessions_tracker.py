"""The in-process session tracker: bounded, least recently seen forgotten first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.sessions import SessionTracker
from gateway.snapshot import KeyEntry
from tests.gateway.test_pipeline import key_entry


def key(max_sessions: int | None = None) -> KeyEntry:
    return key_entry(id=7, max_sessions=max_sessions)


def test_least_recently_seen_sessions_go_first(settings: Any) -> None:
    settings.SESSION_MAX_TRACKED = 100
    tracker = SessionTracker()

    async def main() -> None:
        for n in range(150):
            await tracker.touch(f"s{n}", key(), "m")
            if n % 10 == 0:
                await tracker.touch("s0", key(), "m")  # kept busy: never the least recent

    asyncio.run(main())
    ids = {s.id for s in tracker.listing()}
    assert len(ids) == 100 and "s0" in ids and "s149" in ids and "s1" not in ids
    assert tracker.sessions[(7, "s0")].requests == 16


def test_max_sessions_counts_active_sessions_of_the_key() -> None:
    tracker = SessionTracker()
    limited = key(max_sessions=2)

    async def main() -> None:
        await tracker.touch("a", limited, "m")
        await tracker.touch("b", limited, "m")
        await tracker.touch("a", limited, "m")  # an open session goes on
        with pytest.raises(GatewayError, match="at most 2 active sessions") as info:
            await tracker.touch("c", limited, "m")
        assert info.value.status == 429
        await tracker.touch("c", key(), "m")  # without a limit (e.g. just lifted) it opens

    asyncio.run(main())
