"""GET /api/monitoring/health: public liveness with DB and Redis status."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connections
from rest_framework.test import APIClient

from gateway.redis_client import get_sync_redis

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh_redis_client() -> Iterator[None]:
    get_sync_redis.cache_clear()
    yield
    get_sync_redis.cache_clear()


def test_health_is_public_and_ok(settings: Any) -> None:
    settings.REDIS_URL = ""
    response = APIClient().get("/api/monitoring/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == "0.1.0"
    assert body["db"]["ok"] is True
    assert body["db"]["latencyMs"] >= 0
    assert body["redis"] == {"configured": False, "ok": None}
    assert body["uptimeSeconds"] >= 0
    assert response.headers["X-Request-Id"]


def test_health_ignores_bad_credentials() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sk-omni-bogus")
    assert client.get("/api/monitoring/health").status_code == 200


def test_unreachable_redis_is_degraded_not_down(settings: Any, fresh_redis_client: None) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = APIClient().get("/api/monitoring/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["redis"] == {"configured": True, "ok": False}


def test_database_down_is_503(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.REDIS_URL = ""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("unable to open database file")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    response = APIClient().get("/api/monitoring/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["db"] == {"ok": False, "latencyMs": None}
    assert "unable to open" not in response.content.decode()
