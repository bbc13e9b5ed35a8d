"""Client formats by name, imported lazily on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import ClientFormat

_MODULES = {
    "openai": "gateway.formats.openai",
    "anthropic": "gateway.formats.anthropic",
    "responses": "gateway.formats.responses",
    "gemini": "gateway.formats.gemini",
    "gemini_array": "gateway.formats.gemini.array",  # streamGenerateContent without ?alt=sse
    "ollama": "gateway.formats.ollama",
}
_loaded: dict[str, ClientFormat] = {}


def get_client_format(name: str) -> ClientFormat:
    fmt = _loaded.get(name)
    if fmt is None:
        fmt = importlib.import_module(_MODULES[name]).FORMAT
        _loaded[name] = fmt
    return fmt
