"""GET /api/sessions: the active client sessions (gateway/sessions.py)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.sessions import session_list

from .base import ApiView


class SessionListApi(ApiView):
    def get(self, request: Request) -> Response:
        sessions = session_list()
        return Response(
            {"sessions": sessions, "total": len(sessions), "windowSeconds": settings.SESSION_WINDOW_SECONDS}
        )
