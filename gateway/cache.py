"""The response cache's hook on chat-like requests (docs/API.md §11).

`serve` stands in for `relay_chat` in `serve_chat`: when the cache is off, bypassed
(`X-OmniRoute-No-Cache: true`), the call is internal or the request is not deterministic, it
is `relay_chat` itself (one settings read). Otherwise the exact key is looked up in the LRU,
then the persistent tier, then — semantic mode — by embedding similarity within the same
scope; a hit is rendered in the client's format, as JSON or as a stream. A non-stream miss
whose key is already being answered in this process waits for that answer and is served
it. A miss relays through a `send` wrapper that adds `X-OmniRoute-Cache: MISS` and keeps
the bytes; a complete successful answer is put in this process's LRU in canonical form
just before its last bytes go out (so the same request sent after the answer arrived
hits), then in the persistent tier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from . import inprocess, progress
from .cache_codec import read_answer, render_stream
from .cache_config import CacheConfig, cache_config, cache_enabled
from .cache_key import Lookup, describe
from .cache_redis import RedisTier
from .cache_store import Entry, PersistentTier, counts, memory, persistent_tier
from .cache_vectors import pack
from .capture import Capture
from .http import INTERNAL_CALL, JSON_HEADERS, Headers, Request
from .recorder import Record
from .router import ChatCall, relay_chat
from .routing import Plan
from .snapshot import Snapshot

log = logging.getLogger(__name__)
EMBED_TIMEOUT = 15.0
EMBED_MAX_CHARS = 8000
_STREAM_HEADERS: Headers = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
# Misses being answered in this process, by (event loop, cache key): identical non-stream
# requests that arrive meanwhile wait for the answer and are served it as a hit (one
# upstream call). A stream does not wait: its client would see no byte until the end.
_pending: dict[tuple[int, str], asyncio.Future[None]] = {}


def _bypassed(request: Request) -> bool:
    value = request.headers.get(b"x-omniroute-no-cache")
    return value is not None and value.strip().lower() in (b"true", b"1", b"yes")


async def serve(request: Request, send: Any, call: ChatCall, plan: Plan, snap: Snapshot, record: Record) -> None:
    if not cache_enabled() or INTERNAL_CALL in request.scope or _bypassed(request):
        return await relay_chat(request, send, call, plan, snap, record)
    cfg = cache_config()
    lookup = describe(
        call.client.name, call.payload, plan, non_deterministic=cfg.non_deterministic, thinking=call.thinking
    )
    if lookup is None:
        return await relay_chat(request, send, call, plan, snap, record)
    memory.follow(snap.version)
    tier = persistent_tier()
    vector: bytes | None = None
    try:
        blob = await _exact(lookup, tier, cfg)
        if blob is None and cfg.semantic and lookup.scope:
            vector = await embed(lookup.prompt, cfg)
            found = await tier.nearest(lookup.scope, vector, cfg.threshold) if vector is not None else None
            blob = found[1] if found is not None else None
    except Exception as exc:  # a cache that cannot answer is a miss, never an error
        log.warning("Response cache lookup failed: %s", exc.__class__.__name__)
        blob = None
    pending = (id(asyncio.get_running_loop()), lookup.key)
    if blob is None and not call.stream and (leader := _pending.get(pending)) is not None:
        # The same request is being answered for another client of this process: wait for
        # that answer (stored, or failed) instead of paying for a second one.
        await asyncio.shield(leader)
        entry = memory.get(lookup.key)
        blob = entry.blob if entry is not None else None
    if blob is not None and await _serve_hit(request, send, call, blob, record):
        _count(tier, hit=True)
        return
    _count(tier, hit=False)
    if pending in _pending:  # a stream, or the answer waited for was not stored: on its own
        return await _relay_and_store(request, send, call, plan, snap, record, lookup, vector, tier, cfg, None)
    done = _pending[pending] = asyncio.get_running_loop().create_future()
    try:
        await _relay_and_store(request, send, call, plan, snap, record, lookup, vector, tier, cfg, done)
    finally:
        del _pending[pending]
        if not done.done():
            done.set_result(None)


async def _relay_and_store(
    request: Request,
    send: Any,
    call: ChatCall,
    plan: Plan,
    snap: Snapshot,
    record: Record,
    lookup: Lookup,
    vector: bytes | None,
    tier: PersistentTier,
    cfg: CacheConfig,
    done: asyncio.Future[None] | None,
) -> None:
    """Relay a miss; a complete answer goes into the LRU just before its last bytes are sent
    (then `done` is set: identical requests waiting for it are served it), then into the
    persistent tier."""
    stored: list[Entry] = []

    def keep(sent: bytes) -> None:  # before the answer's last bytes go out: a request sent after it hits
        if record.status_code == 200 and not request.disconnected:
            try:
                entry = _entry(call, lookup, vector, sent, record, cfg)
            except Exception as exc:  # never the client's problem
                log.warning("Response cache: could not read an answer (%s)", exc.__class__.__name__)
                return
            if entry is not None:
                memory.put(entry, max_entries=cfg.max_entries, max_bytes=cfg.max_bytes)
                stored.append(entry)
                if done is not None and not done.done():
                    done.set_result(None)

    capture = Capture(send, limit=cfg.max_bytes, extra_headers=[(b"x-omniroute-cache", b"MISS")], on_complete=keep)
    await relay_chat(request, capture, call, plan, snap, record)
    if stored:
        try:
            await tier.put(stored[0], cfg.ttl_seconds)
        except Exception as exc:
            log.warning("Response cache: could not store an answer (%s)", exc.__class__.__name__)


def _count(tier: PersistentTier, *, hit: bool) -> None:
    counts["hits" if hit else "misses"] += 1
    if isinstance(tier, RedisTier):
        tier.count_hit(hit)


async def _exact(lookup: Lookup, tier: PersistentTier, cfg: CacheConfig) -> bytes | None:
    entry = memory.get(lookup.key)
    if entry is not None:
        return entry.blob
    blob = await tier.get(lookup.key)
    if blob is not None:  # warm this process's LRU
        name = str(orjson.loads(blob).get("name") or "")
        memory.put(
            Entry(lookup.key, blob, name, lookup.requested, expires=time.time() + cfg.ttl_seconds),
            max_entries=cfg.max_entries,
            max_bytes=cfg.max_bytes,
        )
    return blob


async def _serve_hit(request: Request, send: Any, call: ChatCall, blob: bytes, record: Record) -> bool:
    """Send the stored answer in the client's format; False (nothing sent) if it cannot be read."""
    try:
        stored = orjson.loads(blob)
        response = stored["response"]
        if call.stream:
            send = progress.wrap(request, send, call.client)
            body = render_stream(call.client, response, payload=call.payload, request_id=request.request_id.decode())
            headers = [(b"content-type", call.client.stream_content_type), *_STREAM_HEADERS]
        else:
            body, headers = call.client.render_response(response), list(JSON_HEADERS)
        provider, model = str(stored["provider"]), str(stored["model"])
    except Exception as exc:
        log.warning("Response cache: a stored answer could not be served (%s)", exc.__class__.__name__)
        return False
    headers += [
        (b"x-request-id", request.request_id),
        (b"x-omniroute-provider", provider.encode()),
        (b"x-omniroute-model", model.encode("utf-8", "replace")),
        (b"x-omniroute-cache", b"HIT"),
    ]
    # A hit costs nothing: recorded as a 200 of the model that answered, with no tokens and no connection.
    record.provider, record.model, record.connection_id = provider, model, None
    record.ttfb_ms = request.elapsed_ms()
    request.finished = request.response_started = True
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    record.status_code = 200
    return True


def _entry(
    call: ChatCall, lookup: Lookup, vector: bytes | None, sent: bytes, record: Record, cfg: CacheConfig
) -> Entry | None:
    response = read_answer(call.client, sent, stream=call.stream, model=call.target.model_id)
    if response is None:
        return None
    if not response.get("usage"):  # e.g. a stream the client took without usage
        response["usage"] = {
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "total_tokens": record.prompt_tokens + record.completion_tokens,
        }
    name = f"{record.provider}/{record.model}"
    blob = orjson.dumps({"response": response, "provider": record.provider, "model": record.model, "name": name})
    return Entry(lookup.key, blob, name, lookup.requested, lookup.scope, vector, time.time() + cfg.ttl_seconds)


async def embed(text: str, cfg: CacheConfig) -> bytes | None:
    """The text's unit embedding from the operator's embedding model, through the gateway
    itself (combos, fallback and usage records apply); None if that fails."""
    payload = {"model": cfg.embedding_model, "input": text[:EMBED_MAX_CHARS], "encoding_format": "float"}
    try:
        async with asyncio.timeout(EMBED_TIMEOUT):
            status, body = await inprocess.call("/v1/embeddings", payload, caller="semantic-cache", headers=[])
        if status == 200:
            return pack([float(x) for x in orjson.loads(body)["data"][0]["embedding"]])
        log.warning("Semantic cache: the embedding model %s answered %s", cfg.embedding_model, status)
    except (TimeoutError, orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.warning("Semantic cache: no embedding from %s (%s)", cfg.embedding_model, exc.__class__.__name__)
    return None
