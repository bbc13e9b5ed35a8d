"""Writes of the gateway app, one module per concern; import them from here.

Snapshot invalidation happens in model signals (gateway/signals.py), not here.
"""

from .access import (
    API_KEY_EDITABLE_FIELDS,
    API_KEY_FIELDS,
    LOGIN_MAX_FAILURES,
    LOGIN_WINDOW_SECONDS,
    admin_user_ensure,
    api_key_create,
    api_key_delete,
    api_key_update,
    session_login,
    session_logout,
)
from .aliases import alias_delete, alias_set, alias_update, alias_validate
from .combos import COMBO_EDITABLE_FIELDS, COMBO_MAX_DEPTH, combo_create, combo_delete, combo_update, combo_validate
from .resilience import resilience_profile_delete, resilience_profile_validate, resilience_profiles_update

__all__ = [
    "API_KEY_EDITABLE_FIELDS",
    "API_KEY_FIELDS",
    "COMBO_EDITABLE_FIELDS",
    "COMBO_MAX_DEPTH",
    "LOGIN_MAX_FAILURES",
    "LOGIN_WINDOW_SECONDS",
    "admin_user_ensure",
    "alias_delete",
    "alias_set",
    "alias_update",
    "alias_validate",
    "api_key_create",
    "api_key_delete",
    "api_key_update",
    "combo_create",
    "combo_delete",
    "combo_update",
    "combo_validate",
    "resilience_profile_delete",
    "resilience_profile_validate",
    "resilience_profiles_update",
    "session_login",
    "session_logout",
]
