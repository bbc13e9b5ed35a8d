"""Canonical answers as OpenAI Responses objects: the response body and its stream of events.

Reasoning that another provider must get back verbatim on the next turn (Anthropic thinking
blocks with signatures, Gemini thought signatures on tool calls) travels in a reasoning item's
`encrypted_content`, which Responses clients treat as opaque and send back as they got it; see
`encode_reasoning` / `decode_reasoning`.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from .base import Canonical, StreamEncoder, sse_event

_BLOB_PREFIX = "omniroute.v1:"
# finish_reason -> incomplete_details.reason; any other finish is a completed response.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# -- reasoning that must round-trip ----------------------------------------------------------------


def encode_reasoning(thinking_blocks: list[Any], tool_extra: dict[str, Any]) -> str | None:
    if not thinking_blocks and not tool_extra:
        return None
    body: dict[str, Any] = {}
    if thinking_blocks:
        body["thinking_blocks"] = thinking_blocks
    if tool_extra:
        body["tool_extra"] = tool_extra
    return _BLOB_PREFIX + base64.urlsafe_b64encode(orjson.dumps(body)).decode()


def decode_reasoning(value: object) -> tuple[list[Any], dict[str, Any]] | None:
    """Our own `encrypted_content`, or None for anything else (e.g. OpenAI's, useless elsewhere)."""
    if not isinstance(value, str) or not value.startswith(_BLOB_PREFIX):
        return None
    try:
        body = orjson.loads(base64.urlsafe_b64decode(value[len(_BLOB_PREFIX) :]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    blocks = body.get("thinking_blocks")
    extra = body.get("tool_extra")
    return (blocks if isinstance(blocks, list) else []), (extra if isinstance(extra, dict) else {})


# -- building blocks -------------------------------------------------------------------------------


def responses_usage(usage: object) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(usage.get("cache_creation_input_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def response_object(
    *,
    response_id: str,
    model: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    finish_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `response` object. The request's own settings are not known here: they show defaults."""
    reason = _INCOMPLETE.get(finish_reason or "") if status == "incomplete" else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def status_of(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason in _INCOMPLETE else "completed"


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [text_part(text)] if status == "completed" else []
    return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def reasoning_item(item_id: str, text: str, encrypted: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


# -- non-stream ------------------------------------------------------------------------------------


def render_response(response: Canonical) -> dict[str, Any]:
    choices = response.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    finish_reason = choice.get("finish_reason")
    status = status_of(finish_reason)
    return response_object(
        response_id=new_id("resp"),
        model=str(response.get("model") or ""),
        created_at=int(response.get("created") or time.time()),
        status=status,
        output=output_items(message),
        usage=responses_usage(response.get("usage")),
        finish_reason=finish_reason,
    )


def output_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Reasoning first, then the message, then one item per tool call (the order OpenAI uses)."""
    items: list[dict[str, Any]] = []
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    tool_extra = {str(c.get("id")): c["extra_content"] for c in calls if c.get("extra_content")}
    reasoning = message.get("reasoning_content") or ""
    encrypted = encode_reasoning(list(message.get("thinking_blocks") or []), tool_extra)
    if reasoning or encrypted:
        items.append(reasoning_item(new_id("rs"), reasoning, encrypted))
    text = content_text(message.get("content")) or (message.get("refusal") or "")
    if text or not calls:
        items.append(message_item(new_id("msg"), text))
    for call in calls:
        function = call.get("function") or {}
        call_id = call.get("id") or new_id("call")
        items.append(call_item(new_id("fc"), call_id, function.get("name") or "", function.get("arguments") or ""))
    return items


# -- stream ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """An output item whose events are still being sent."""

    kind: str  # "reasoning" | "message" | "function_call"
    index: int
    id: str
    parts: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""


class ResponsesStreamEncoder(StreamEncoder):
    """Canonical chunks -> the Responses event lifecycle, each event flushed as it is built.

    response.created, response.in_progress, then per output item `output_item.added`, its
    content events and `output_item.done`, and exactly one terminal event: response.completed,
    response.incomplete (length / content filter) or response.failed.
    """

    def __init__(self, model: str) -> None:
        self.response_id = new_id("resp")
        self.model = model
        self.created_at = int(time.time())
        self.sequence = 0
        self.started = False
        self.ended = False
        self.output: list[dict[str, Any] | None] = []
        self.current: _Item | None = None  # the open reasoning or message item
        self.calls: dict[int, _Item] = {}  # canonical tool-call index -> its open item
        self.seen_calls: set[int] = set()
        self.tool_extra: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    # -- StreamEncoder -------------------------------------------------------------------------

    def feed(self, chunk: Canonical) -> bytes:
        out = [] if self.started else [self._start()]
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and not choice.get("index"):
                out.extend(self._choice(choice))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        return b"".join(out)

    def finish(self) -> bytes:
        out = [] if self.started else [self._start()]
        out.extend(self._close_all())
        if self.tool_extra:
            # Tool-call signatures arrive after the reasoning item was closed: a trailing one carries them.
            out.extend(self._whole_reasoning("", encode_reasoning([], self.tool_extra)))
        status = status_of(self.finish_reason)
        self.ended = True
        terminal = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._event(terminal, response=self._response(status)))
        return b"".join(out)

    def failure(self, message: str) -> bytes | None:
        if self.ended:
            return b""  # the terminal event is out: nothing may follow it
        out = [] if self.started else [self._start()]
        self.ended = True
        error = {"code": "server_error", "message": message}
        out.append(self._event("response.failed", response=self._response("failed", error=error)))
        return b"".join(out)

    # -- chunk handling ------------------------------------------------------------------------

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        delta = choice.get("delta") or {}
        if delta.get("reasoning_content"):
            out.extend(self._reasoning(delta["reasoning_content"]))
        if delta.get("thinking_signature"):
            out.extend(self._signature(delta["thinking_signature"]))
        if delta.get("thinking_blocks"):
            # Whole blocks (e.g. Anthropic's redacted thinking): a reasoning item of their own, no text.
            out.extend(self._close_current())
            out.extend(self._whole_reasoning("", encode_reasoning(list(delta["thinking_blocks"]), {})))
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            out.extend(self._text(text))
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                out.extend(self._tool_call(call))
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            out.extend(self._close_all())
        return out

    def _reasoning(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        item = self.current
        if item is None or item.kind != "reasoning":
            out.extend(self._close_all())
            item = self._open_reasoning(out)
        if not item.parts:
            out.append(
                self._event("response.reasoning_summary_part.added", **self._summary_ref(item), part=_summary(""))
            )
        item.parts.append(text)
        out.append(self._event("response.reasoning_summary_text.delta", **self._summary_ref(item), delta=text))
        return out

    def _signature(self, signature: str) -> list[bytes]:
        out: list[bytes] = []
        item = self.current
        if item is None or item.kind != "reasoning":
            out.extend(self._close_all())
            item = self._open_reasoning(out)
        block = {"type": "thinking", "thinking": "".join(item.parts), "signature": signature}
        out.extend(self._close_reasoning(item, encode_reasoning([block], {})))
        self.current = None
        return out

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        item = self.current
        if item is None or item.kind != "message":
            out.extend(self._close_all())
            item = self._open("message", "msg")
            added = message_item(item.id, "", status="in_progress")
            out.append(self._event("response.output_item.added", output_index=item.index, item=added))
            out.append(self._event("response.content_part.added", **self._part_ref(item), part=text_part("")))
        item.parts.append(text)
        out.append(self._event("response.output_text.delta", **self._part_ref(item), delta=text, logprobs=[]))
        return out

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        index = call.get("index") or 0
        function = call.get("function") or {}
        item = self.calls.get(index)
        if item is None:
            if index in self.seen_calls:
                return out  # a late fragment of a call already closed: nothing valid to send it as
            out.extend(self._close_current())
            item = self._open("function_call", "fc")
            item.call_id = call.get("id") or new_id("call")
            item.name = function.get("name") or ""
            self.calls[index] = item
            self.seen_calls.add(index)
            added = call_item(item.id, item.call_id, item.name, "", status="in_progress")
            out.append(self._event("response.output_item.added", output_index=item.index, item=added))
        if call.get("extra_content"):
            self.tool_extra[item.call_id] = call["extra_content"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.parts.append(arguments)
            out.append(
                self._event(
                    "response.function_call_arguments.delta", item_id=item.id, output_index=item.index, delta=arguments
                )
            )
        return out

    # -- opening and closing items -------------------------------------------------------------

    def _open(self, kind: str, prefix: str) -> _Item:
        item = _Item(kind=kind, index=len(self.output), id=new_id(prefix))
        self.output.append(None)
        if kind != "function_call":
            self.current = item
        return item

    def _open_reasoning(self, out: list[bytes]) -> _Item:
        item = self._open("reasoning", "rs")
        added = reasoning_item(item.id, "", None)
        out.append(self._event("response.output_item.added", output_index=item.index, item=added))
        return item

    def _close_all(self) -> list[bytes]:
        out = self._close_current()
        for index in sorted(self.calls):
            out.extend(self._close_call(self.calls[index]))
        self.calls.clear()
        return out

    def _close_current(self) -> list[bytes]:
        item, self.current = self.current, None
        if item is None:
            return []
        if item.kind == "reasoning":
            return self._close_reasoning(item, None)
        return self._close_message(item)

    def _close_reasoning(self, item: _Item, encrypted: str | None) -> list[bytes]:
        out: list[bytes] = []
        text = "".join(item.parts)
        if item.parts:
            ref = self._summary_ref(item)
            out.append(self._event("response.reasoning_summary_text.done", **ref, text=text))
            out.append(self._event("response.reasoning_summary_part.done", **ref, part=_summary(text)))
        done = reasoning_item(item.id, text, encrypted)
        return out + self._item_done(item, done)

    def _close_message(self, item: _Item) -> list[bytes]:
        text = "".join(item.parts)
        ref = self._part_ref(item)
        return [
            self._event("response.output_text.done", **ref, text=text, logprobs=[]),
            self._event("response.content_part.done", **ref, part=text_part(text)),
            *self._item_done(item, message_item(item.id, text)),
        ]

    def _close_call(self, item: _Item) -> list[bytes]:
        arguments = "".join(item.parts)
        done = self._event(
            "response.function_call_arguments.done", item_id=item.id, output_index=item.index, arguments=arguments
        )
        return [done, *self._item_done(item, call_item(item.id, item.call_id, item.name, arguments))]

    def _whole_reasoning(self, text: str, encrypted: str | None) -> list[bytes]:
        out: list[bytes] = []
        item = self._open_reasoning(out)
        self.current = None
        return out + self._item_done(item, reasoning_item(item.id, text, encrypted))

    def _item_done(self, item: _Item, done: dict[str, Any]) -> list[bytes]:
        self.output[item.index] = done
        return [self._event("response.output_item.done", output_index=item.index, item=done)]

    # -- events --------------------------------------------------------------------------------

    def _start(self) -> bytes:
        self.started = True
        created = self._event("response.created", response=self._response("in_progress"))
        return created + self._event("response.in_progress", response=self._response("in_progress"))

    def _response(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        done = status != "in_progress"
        return response_object(
            response_id=self.response_id,
            model=self.model,
            created_at=self.created_at,
            status=status,
            output=[item for item in self.output if item is not None] if done else [],
            usage=responses_usage(self.usage) if done else None,
            finish_reason=self.finish_reason,
            error=error,
        )

    def _event(self, name: str, **fields: Any) -> bytes:
        body = {"type": name, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse_event(body, name)

    @staticmethod
    def _part_ref(item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index, "content_index": 0}

    @staticmethod
    def _summary_ref(item: _Item) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index, "summary_index": 0}


def _summary(text: str) -> dict[str, str]:
    return {"type": "summary_text", "text": text}


def error_event(message: str, code: str | None, sequence_number: int = 0) -> bytes:
    """The stateless `error` event, for a failure whose stream state is unknown."""
    body = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": sequence_number}
    return sse_event(body, "error")
