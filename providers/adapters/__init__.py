"""Provider adapters by wire format, imported lazily on first use."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import ChatAdapter

_MODULES = {
    "openai": "providers.adapters.openai",
    "anthropic": "providers.adapters.anthropic",
    "gemini": "providers.adapters.gemini",
    "responses": "providers.adapters.responses",
}
_loaded: dict[str, ChatAdapter] = {}


class UnsupportedFormat(LookupError):
    pass


def get_adapter(wire_format: str) -> ChatAdapter:
    adapter = _loaded.get(wire_format)
    if adapter is None:
        module_name = _MODULES.get(wire_format)
        if module_name is None or importlib.util.find_spec(module_name) is None:
            raise UnsupportedFormat(f"No adapter for the {wire_format!r} wire format yet")
        adapter = importlib.import_module(module_name).ADAPTER
        _loaded[wire_format] = adapter
    return adapter
