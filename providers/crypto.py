"""Encryption at rest for provider secrets (Fernet: AES-128-CBC + HMAC-SHA256).

The Fernet key is derived from STORAGE_ENCRYPTION_KEY, which is generated once and kept
under DATA_DIR when the environment does not set it.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretDecryptionError(Exception):
    """The stored secret cannot be decrypted with the configured STORAGE_ENCRYPTION_KEY."""


@lru_cache(maxsize=4)
def _fernet(key_material: str) -> Fernet:
    digest = hashlib.sha256(key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plain: str) -> str:
    if not plain:
        return ""
    return _fernet(settings.STORAGE_ENCRYPTION_KEY).encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet(settings.STORAGE_ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError(
            "A provider secret cannot be decrypted: STORAGE_ENCRYPTION_KEY differs from the one it was stored with"
        ) from exc


def mask_secret(plain: str) -> str:
    """A hint an operator can recognise a key by, never enough to use it."""
    if not plain:
        return ""
    if len(plain) <= 8:
        return "•" * len(plain)
    return f"{plain[:3]}…{plain[-4:]}"
