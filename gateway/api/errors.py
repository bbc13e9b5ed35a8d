"""Domain errors of the control plane.

Services and selectors raise these; the one `/api` exception handler turns them into the
JSON error shape, and the admin shows their message. They never carry secrets.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. `field` names the offending input (snake_case)."""

    status: int = 400
    type: str = "invalid_request_error"

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status


class InvalidInput(DomainError):
    status = 400
    type = "invalid_request_error"


class NotFound(DomainError):
    status = 404
    type = "not_found_error"


class AuthenticationFailed(DomainError):
    status = 401
    type = "authentication_error"


class TooManyAttempts(DomainError):
    status = 429
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamFailed(DomainError):
    """The provider could not be reached or answered with an error."""

    status = 502
    type = "upstream_error"
