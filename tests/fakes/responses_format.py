"""The OpenAI Responses wire format: ``POST /v1/responses``.

Bodies follow what api.openai.com sends: ``response`` objects with ``output`` items (reasoning,
message, function_call) and ``usage``; streams of ``event: <type>\\ndata: <json>\\n\\n`` events
with increasing ``sequence_number``s — response.created, response.in_progress, per item
``output_item.added`` / content events / ``output_item.done``, and one terminal
response.completed or response.incomplete; function-call arguments arrive as several
``function_call_arguments.delta`` fragments. Errors are ``{"error": {"message", "type", "param",
"code"}}``. Like the real API it rejects unknown top-level parameters, malformed items and a
``function_call_output`` whose ``call_id`` has no ``function_call`` earlier in ``input``, so a bad
translation fails loudly.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.openai_format import error_response
from tests.fakes.scripting import (
    Behaviour,
    BehaviourSource,
    ScriptedStream,
    ToolCall,
    Usage,
    hold,
    raw_response,
    recorded,
    reply_of,
    split_pieces,
    split_words,
    tool_calls_of,
    usage_of,
)

KNOWN_PARAMETERS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
        "max_tool_calls", "temperature", "top_p", "top_logprobs", "reasoning", "text", "stream", "stream_options",
        "store", "include", "metadata", "previous_response_id", "conversation", "prompt", "prompt_cache_key",
        "safety_identifier", "user", "service_tier", "truncation", "background",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Answer:
    id: str
    created_at: int
    model: str
    thinking: str | None
    encrypted: bool
    text: str | None
    tool_calls: list[ToolCall]
    incomplete: bool
    usage: Usage
    request: dict[str, Any]


def encrypted_of(thinking: str) -> str:
    """The fake's encrypted reasoning: opaque, but derived from the text so tests can predict it."""
    return "gAAAA" + hashlib.sha256(thinking.encode()).hexdigest()


def routes(source: BehaviourSource) -> list[web.RouteDef]:
    async def responses(request: web.Request) -> web.StreamResponse:
        problem = check_request(recorded(request).headers, recorded(request).json)
        if problem is not None:
            return problem
        payload = recorded(request).json
        behaviour = source.behaviour_for(recorded(request))
        await hold(behaviour)
        is_stream = payload.get("stream") is True
        if behaviour.body is not None:
            streams = is_stream and behaviour.status < 400
            return raw_response(behaviour, content_type="text/event-stream" if streams else "application/json")
        if behaviour.status >= 400:
            return error_response(behaviour.status, behaviour.error_message, headers=behaviour.headers)
        answer = build_answer(behaviour, payload)
        if is_stream:
            return await stream_answer(request, behaviour, answer)
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}", **behaviour.headers}
        return web.json_response(response_body(answer, "completed"), headers=headers)

    return [web.post("/v1/responses", responses)]


# -- validation ------------------------------------------------------------------------------------


def check_request(headers: dict[str, str], payload: Any) -> web.Response | None:
    if not headers.get("authorization", "").startswith("Bearer "):
        return error_response(401, "You didn't provide an API key.")
    if not isinstance(payload, dict):
        return error_response(400, "We could not parse the JSON body of your request.")
    unknown = sorted(set(payload) - KNOWN_PARAMETERS)
    if unknown:
        return error_response(400, f"Unknown parameter: '{unknown[0]}'.", param=unknown[0])
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        return error_response(400, "Missing required parameter: 'model'.", param="model")
    problem = input_problem(payload) or tools_problem(payload.get("tools"))
    return error_response(400, problem) if problem else None


def input_problem(payload: dict[str, Any]) -> str | None:
    items = payload.get("input")
    if items is None:
        return None if payload.get("previous_response_id") else "Missing required parameter: 'input'."
    if isinstance(items, str):
        return None
    if not isinstance(items, list):
        return "Invalid type for 'input': expected a string or an array."
    calls: set[str] = set()
    for index, item in enumerate(items):
        problem = item_problem(item, f"input[{index}]", calls, stateful=bool(payload.get("previous_response_id")))
        if problem:
            return problem
    return None


def item_problem(item: Any, where: str, calls: set[str], *, stateful: bool) -> str | None:
    if not isinstance(item, dict):
        return f"Invalid type for '{where}': expected an object."
    kind = item.get("type", "message")
    if kind == "message":
        if item.get("role") not in ("user", "assistant", "system", "developer"):
            return f"Invalid value for '{where}.role'."
        if not isinstance(item.get("content"), str | list):
            return f"Missing required parameter: '{where}.content'."
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                return f"Missing required parameter: '{where}.{name}'."
        calls.add(item["call_id"])
    elif kind == "function_call_output":
        if item.get("call_id") not in calls and not stateful:
            return f"No tool call found for function call output with call_id {item.get('call_id')}."
        if not isinstance(item.get("output"), str | list):
            return f"Missing required parameter: '{where}.output'."
    elif kind == "reasoning" and not (isinstance(item.get("id"), str) and isinstance(item.get("summary"), list)):
        return f"Missing required parameter: '{where}.id'."
    return None


def tools_problem(tools: Any) -> str | None:
    for index, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or not tool.get("type"):
            return f"Missing required parameter: 'tools[{index}].type'."
        if tool["type"] == "function" and not tool.get("name"):
            return f"Missing required parameter: 'tools[{index}].name'."
    return None


# -- answers ---------------------------------------------------------------------------------------


def build_answer(behaviour: Behaviour, payload: dict[str, Any]) -> Answer:
    text = reply_of(behaviour, payload["model"])
    tool_calls = tool_calls_of(behaviour)
    completion_text = (behaviour.thinking or "") + (text or "") + "".join(c.name + c.arguments for c in tool_calls)
    include = payload.get("include") or []
    return Answer(
        id=f"resp_{uuid.uuid4().hex}",
        created_at=int(time.time()),
        model=payload["model"],
        thinking=behaviour.thinking,
        encrypted="reasoning.encrypted_content" in include,
        text=text,
        tool_calls=tool_calls,
        incomplete=behaviour.finish_reason == "length",
        usage=usage_of(behaviour, prompt_text=prompt_text(payload), completion_text=completion_text),
        request=payload,
    )


def prompt_text(payload: dict[str, Any]) -> str:
    texts = [payload.get("instructions") or ""]
    items = payload.get("input")
    if isinstance(items, str):
        return items
    for item in items or []:
        content = item.get("content", item.get("output")) if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(t for t in texts if t)


def output_items(answer: Answer) -> list[dict[str, Any]]:
    items = []
    if answer.thinking is not None:
        items.append(reasoning_item(answer))
    if answer.text is not None:
        items.append(message_item(answer))
    items.extend(call_item(answer, call) for call in answer.tool_calls)
    return items


def reasoning_item(answer: Answer) -> dict[str, Any]:
    assert answer.thinking is not None
    item: dict[str, Any] = {
        "id": f"rs_{answer.id[5:]}",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": answer.thinking}],
    }
    if answer.encrypted:
        item["encrypted_content"] = encrypted_of(answer.thinking)
    return item


def message_item(answer: Answer, status: str = "completed") -> dict[str, Any]:
    content = [text_part(answer.text or "")] if status == "completed" else []
    return {"id": f"msg_{answer.id[5:]}", "type": "message", "status": status, "content": content, "role": "assistant"}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def call_item(answer: Answer, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {
        "id": f"fc_{call.id}",
        "type": "function_call",
        "status": status,
        "arguments": call.arguments if status == "completed" else "",
        "call_id": call.id,
        "name": call.name,
    }


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_creation_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_body(answer: Answer, status: str) -> dict[str, Any]:
    """The response object; in progress it has no output and no usage yet, like the real one."""
    request = answer.request
    finished = status != "in_progress"
    if finished and answer.incomplete:
        status = "incomplete"
    return {
        "id": answer.id,
        "object": "response",
        "created_at": answer.created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": answer.model,
        "output": output_items(answer) if finished else [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"), "summary": None},
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage_body(answer.usage) if finished else None,
        "user": None,
        "metadata": request.get("metadata") or {},
    }


# -- streaming -------------------------------------------------------------------------------------


class _Events:
    """Numbers and frames events; content deltas are the chunks disconnect_after_chunks counts."""

    def __init__(self, stream: ScriptedStream) -> None:
        self.stream = stream
        self.sequence = 0

    async def send(self, name: str, *, counted: bool = False, **fields: Any) -> None:
        body = {"type": name, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        frame = f"event: {name}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"
        await self.stream.send(frame.encode(), counted=counted)


async def stream_answer(request: web.Request, behaviour: Behaviour, answer: Answer) -> web.StreamResponse:
    stream = ScriptedStream(request, behaviour)
    stream.response.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
    await stream.open()
    events = _Events(stream)
    await events.send("response.created", response=response_body(answer, "in_progress"))
    await events.send("response.in_progress", response=response_body(answer, "in_progress"))
    index = 0
    if answer.thinking is not None:
        await _stream_reasoning(events, answer, index)
        index += 1
    if answer.text is not None:
        await _stream_message(events, answer, index)
        index += 1
    for call in answer.tool_calls:
        await _stream_call(events, answer, call, index)
        index += 1
    terminal = "response.incomplete" if answer.incomplete else "response.completed"
    await events.send(terminal, response=response_body(answer, "completed"))
    await stream.close()
    return stream.response


async def _stream_reasoning(events: _Events, answer: Answer, index: int) -> None:
    item = reasoning_item(answer)
    text = answer.thinking or ""
    ref: dict[str, Any] = {"item_id": item["id"], "output_index": index, "summary_index": 0}
    await events.send("response.output_item.added", output_index=index, item={**item, "summary": []})
    await events.send("response.reasoning_summary_part.added", **ref, part={"type": "summary_text", "text": ""})
    for word in split_words(text):
        await events.send("response.reasoning_summary_text.delta", counted=True, **ref, delta=word)
    await events.send("response.reasoning_summary_text.done", **ref, text=text)
    await events.send("response.reasoning_summary_part.done", **ref, part={"type": "summary_text", "text": text})
    await events.send("response.output_item.done", output_index=index, item=item)


async def _stream_message(events: _Events, answer: Answer, index: int) -> None:
    text = answer.text or ""
    item_id = f"msg_{answer.id[5:]}"
    ref: dict[str, Any] = {"item_id": item_id, "output_index": index, "content_index": 0}
    await events.send("response.output_item.added", output_index=index, item=message_item(answer, "in_progress"))
    await events.send("response.content_part.added", **ref, part=text_part(""))
    for word in split_words(text):
        await events.send("response.output_text.delta", counted=True, **ref, delta=word, logprobs=[])
    await events.send("response.output_text.done", **ref, text=text, logprobs=[])
    await events.send("response.content_part.done", **ref, part=text_part(text))
    await events.send("response.output_item.done", output_index=index, item=message_item(answer))


async def _stream_call(events: _Events, answer: Answer, call: ToolCall, index: int) -> None:
    item_id = f"fc_{call.id}"
    ref: dict[str, Any] = {"item_id": item_id, "output_index": index}
    await events.send("response.output_item.added", output_index=index, item=call_item(answer, call, "in_progress"))
    for piece in split_pieces(call.arguments):
        await events.send("response.function_call_arguments.delta", counted=True, **ref, delta=piece)
    await events.send("response.function_call_arguments.done", **ref, arguments=call.arguments)
    await events.send("response.output_item.done", output_index=index, item=call_item(answer, call))
