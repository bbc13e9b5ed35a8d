"""The cached answer's one form, and the ways in and out of it.

An answer is stored as the canonical response (an OpenAI `chat.completion`, see
gateway/formats/base.py), so it can be served to any later client of the same format as JSON
or as a stream. It is read back from the bytes the client was sent: each client format is the
native wire format of a provider adapter, whose `to_canonical_response` / `stream_decoder`
already read it (Ollama and the Gemini JSON-array stream have no adapter; they are read here).
A stream's canonical chunks are assembled into one response; a response is replayed as chunks.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from providers.adapters import get_adapter

from .formats.base import ClientFormat

log = logging.getLogger(__name__)
Canonical = dict[str, Any]


def _ollama_chunks(body: bytes) -> list[Canonical]:
    """Ollama NDJSON lines (or one JSON answer) as canonical chunks."""
    chunks: list[Canonical] = []
    has_calls = False
    for line in body.splitlines():
        if not line.strip():
            continue
        obj = orjson.loads(line)
        message = obj.get("message") or {}
        delta: dict[str, Any] = {}
        if message.get("thinking"):
            delta["reasoning_content"] = message["thinking"]
        if message.get("content"):
            delta["content"] = message["content"]
        calls = []
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            arguments = function.get("arguments")
            calls.append(
                {
                    "index": function.get("index", index),
                    "id": call.get("id") or f"call_{index}",
                    "type": "function",
                    "function": {
                        "name": function.get("name") or "",
                        "arguments": arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
                    },
                }
            )
        if calls:
            delta["tool_calls"] = calls
            has_calls = True
        if delta:
            chunks.append({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        if obj.get("done"):
            reason = "tool_calls" if has_calls else obj.get("done_reason") or "stop"
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
            prompt, completion = int(obj.get("prompt_eval_count") or 0), int(obj.get("eval_count") or 0)
            usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
            chunks.append({"choices": [], "usage": usage})
    return chunks


def _gemini_array_sse(body: bytes) -> bytes:
    items = orjson.loads(body)
    return b"".join(b"data: " + orjson.dumps(item) + b"\n\n" for item in items)


def read_answer(fmt: ClientFormat, body: bytes, *, stream: bool, model: str) -> Canonical | None:
    """The canonical response from what the client was sent; None when it cannot be read."""
    try:
        if fmt.name == "ollama":
            return assemble(_ollama_chunks(body), model=model)
        wire = fmt.native_provider_format or ""
        if fmt.name == "gemini" and not wire:  # the JSON-array stream (GeminiArrayFormat)
            body, wire = _gemini_array_sse(body), "gemini"
        adapter = get_adapter(wire)
        if not stream:
            return adapter.to_canonical_response(orjson.loads(body), model=model)
        decoder = adapter.stream_decoder(model=model)
        return assemble([*decoder.feed(body), *decoder.finish()], model=model)
    except Exception as exc:  # an answer we cannot read is simply not cached
        log.warning("Response cache: could not read a %s answer (%s)", fmt.name, exc.__class__.__name__)
        return None


def assemble(chunks: list[Canonical], *, model: str) -> Canonical | None:
    """Canonical chunks -> one canonical `chat.completion`; None without a finish reason."""
    content: list[str] = []
    reasoning: list[str] = []
    signature = ""
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: Any = None
    ident = ""
    for chunk in chunks:
        ident = ident or str(chunk.get("id") or "")
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            if choice.get("index"):
                continue
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            signature = delta.get("thinking_signature") or signature
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(
                    call.get("index") or 0, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = slot["id"] or call.get("id") or ""
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
                if call.get("extra_content"):
                    slot["extra_content"] = call["extra_content"]
            finish = choice.get("finish_reason") or finish
    if finish is None:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
        if signature:
            message["thinking_blocks"] = [
                {"type": "thinking", "thinking": message["reasoning_content"], "signature": signature}
            ]
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": ident or f"chatcmpl-{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def replay_chunks(response: Canonical) -> list[Canonical]:
    """A canonical response as the canonical chunks of a stream."""
    base = {"id": response.get("id") or "", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = response.get("model") or ""
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Canonical:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if message.get("reasoning_content"):
        out.append(chunk({"reasoning_content": message["reasoning_content"]}))
        blocks = message.get("thinking_blocks") or []
        if blocks and blocks[0].get("signature"):
            out.append(chunk({"thinking_signature": blocks[0]["signature"]}))
    if message.get("content"):
        out.append(chunk({"content": message["content"]}))
    for index, call in enumerate(message.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{**call, "index": index}]}))
    out.append(chunk({}, choice.get("finish_reason") or "stop"))
    if response.get("usage"):
        out.append({**base, "choices": [], "usage": response["usage"]})
    return out


def render_stream(fmt: ClientFormat, response: Canonical, *, payload: dict[str, Any], request_id: str) -> bytes:
    encoder = fmt.stream_encoder(
        model=str(response.get("model") or ""),
        request_id=request_id,
        include_usage=fmt.client_wants_stream_usage(payload),
    )
    return b"".join(encoder.feed(c) for c in replay_chunks(response)) + encoder.finish()
