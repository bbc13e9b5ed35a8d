"""ASGI lifespan: warm the config snapshot at start; on shutdown close the upstream pool and
flush the recorder, so a graceful restart loses no usage record."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

from providers.outbound import close_session

from .recorder import recorder
from .snapshot import get_snapshot
from .telemetry import start_background, stop_background

log = logging.getLogger(__name__)


def _tune_gc() -> None:
    """Keep full garbage collections off the request path's tail latency.

    Everything loaded at start-up (Django, the catalog, the snapshot) lives as long as the
    process: freezing it takes it out of every later collection. The young-generation
    threshold is raised because each request allocates a few hundred short-lived objects.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await get_snapshot()
            except Exception as exc:  # a missing migration should not hide behind a traceback
                log.error("Could not load the configuration snapshot at start-up: %s", exc)
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            _tune_gc()
            start_background()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_session()
            await asyncio.to_thread(recorder.stop)
            await asyncio.to_thread(stop_background)
            log.info("Recorder flushed: %d records written, %d failed", recorder.written, recorder.failed)
            await send({"type": "lifespan.shutdown.complete"})
            return
