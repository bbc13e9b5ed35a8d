"""The global system prompt, put into the client's own body before anything reads it.

Injecting into the client's body (not the canonical one) is what makes it reach every
provider: a translated request carries it into the canonical system message, and a request
that passes through to a provider of the client's format sends the amended body as is.
The prompt goes in front of the client's own system prompt (separated by a blank line, or
as a separate first block/part where the format has them), or becomes the system prompt.
A body too malformed to amend is left alone: validation answers it with a 400.
"""

from __future__ import annotations

from typing import Any

SEPARATOR = "\n\n"


def _prepend_text(existing: str, prompt: str) -> str:
    return f"{prompt}{SEPARATOR}{existing}" if existing else prompt


def _chat_messages(payload: dict[str, Any], prompt: str) -> dict[str, Any]:
    """OpenAI chat and Ollama: the leading system/developer message, else a new one first."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return payload
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") in ("system", "developer"):
        content = first.get("content")
        if isinstance(content, str) or content is None:
            amended = {**first, "content": _prepend_text(content or "", prompt)}
        elif isinstance(content, list):
            amended = {**first, "content": [{"type": "text", "text": prompt}, *content]}
        else:
            return payload
        return {**payload, "messages": [amended, *messages[1:]]}
    return {**payload, "messages": [{"role": "system", "content": prompt}, *messages]}


def _anthropic(payload: dict[str, Any], prompt: str) -> dict[str, Any]:
    system = payload.get("system")
    if system is None or isinstance(system, str):
        return {**payload, "system": _prepend_text(system or "", prompt)}
    if isinstance(system, list):
        return {**payload, "system": [{"type": "text", "text": prompt}, *system]}
    return payload


def _responses(payload: dict[str, Any], prompt: str) -> dict[str, Any]:
    instructions = payload.get("instructions")
    if instructions is None or isinstance(instructions, str):
        return {**payload, "instructions": _prepend_text(instructions or "", prompt)}
    return payload


def _gemini(payload: dict[str, Any], prompt: str) -> dict[str, Any]:
    key = "system_instruction" if "system_instruction" in payload else "systemInstruction"
    system = payload.get(key)
    if system is None:
        return {**payload, key: {"parts": [{"text": prompt}]}}
    if isinstance(system, str):
        return {**payload, key: _prepend_text(system, prompt)}
    if isinstance(system, dict) and isinstance(system.get("parts"), list):
        return {**payload, key: {**system, "parts": [{"text": prompt}, *system["parts"]]}}
    return payload


_BY_CLIENT = {
    "openai": _chat_messages,
    "ollama": _chat_messages,
    "anthropic": _anthropic,
    "responses": _responses,
    "gemini": _gemini,
    "gemini_array": _gemini,
}


def inject_system_prompt(client: str, payload: dict[str, Any], prompt: str) -> dict[str, Any]:
    """A new body with `prompt` in front of the client's system prompt; the client's dict is not changed."""
    inject = _BY_CLIENT.get(client)
    return inject(payload, prompt) if inject is not None else payload
