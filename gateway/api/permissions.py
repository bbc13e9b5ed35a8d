from __future__ import annotations

from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from .authentication import ApiKeyPrincipal


def is_operator(user: Any) -> bool:
    """A staff user or an admin-scope API key."""
    if isinstance(user, ApiKeyPrincipal):
        return user.is_admin
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class IsOperator(permissions.BasePermission):
    """A staff user's session, or an API key with the admin scope."""

    message = "Management needs an operator login or an admin-scope API key"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if isinstance(user, ApiKeyPrincipal) and not user.is_admin:
            raise exceptions.PermissionDenied("This API key has the inference scope; management needs an admin key")
        return is_operator(user)
