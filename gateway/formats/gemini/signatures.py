"""Thought signatures as a Gemini client sees them.

A Gemini `thoughtSignature` is proto `bytes`: base64, and the google-genai SDK rejects a
response whose signature is not. Canonical signatures may come from any provider (Anthropic
thinking signatures are base64; the Responses adapter's carry a text prefix), so a value
that is not base64 is wrapped (base64 of a marker and the value) and unwrapped when the
client sends it back. The SDK also re-encodes every signature with the URL-safe alphabet:
it is turned back to the standard one, which the provider that issued it expects verbatim.
"""

from __future__ import annotations

import base64
import binascii

from providers.adapters.gemini.wire import is_base64, standard_base64

_MARK = b"omniroute-signature:"


def to_client(signature: str) -> str:
    if is_base64(signature):
        return signature
    return base64.b64encode(_MARK + signature.encode()).decode()


def from_client(signature: str) -> str:
    standard = standard_base64(signature)
    try:
        raw = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        return signature
    if raw.startswith(_MARK):
        return raw[len(_MARK) :].decode("utf-8", "replace")
    return standard
