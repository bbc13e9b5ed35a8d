"""Who is calling the management API: an admin-scope API key or a logged-in operator session."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from gateway.models import ApiKey
from gateway.selectors import api_key_get_by_secret


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The `request.user` of a request authenticated by an API key."""

    key_id: int
    name: str
    scope: str
    is_authenticated: bool = True
    is_active: bool = True

    @property
    def is_admin(self) -> bool:
        return self.scope == ApiKey.SCOPE_ADMIN

    def __str__(self) -> str:
        return f"api-key:{self.key_id}"


class AdminApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <gateway API key>`. Scope is checked by the permission, so an
    inference key gets a 403 that says why instead of a bare 401."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header; expected 'Bearer <key>'")
        try:
            plain = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid API key") from exc
        key = api_key_get_by_secret(plain=plain)
        if key is None or not key.is_active:
            raise exceptions.AuthenticationFailed("Invalid API key")
        return ApiKeyPrincipal(key_id=key.pk, name=key.name, scope=key.scope), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Django session (cookie `auth_token`), CSRF enforced on unsafe methods.

    The header makes DRF answer 401 rather than 403 when nobody is authenticated.
    """

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'
