"""Client API keys: generation and hashing.

Keys carry 256 bits of randomness, so a plain SHA-256 is enough to store them safely and
keeps the per-request lookup to one hash and one dict access.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-omni-"
VISIBLE_CHARS = len(KEY_PREFIX) + 4


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def visible_prefix(plain: str) -> str:
    return plain[:VISIBLE_CHARS]
