from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from gateway.recorder import recorder
from gateway.snapshot import snapshot_mark_dirty
from gateway.state import get_state
from tests.fakes.fixtures import fake_provider, fake_provider_server  # noqa: F401
from tests.live_server import LiveGateway


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: pytest.FixtureRequest) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]


@pytest.fixture(scope="session", autouse=True)
def _no_rollup_thread() -> None:
    """Gateways under test (in-thread and GatewayProcess) never run the hourly roll-up on
    their own: it would write to the test database at unpredictable moments."""
    from django.conf import settings

    os.environ["ROLLUP_IN_GATEWAY"] = "false"
    settings.ROLLUP_IN_GATEWAY = False


@pytest.fixture
def staff(db: None) -> Client:
    """A Django test client logged in as an operator (staff superuser)."""
    from tests.factories import AdminUserFactory

    client = Client()
    client.force_login(AdminUserFactory.create())
    return client


@pytest.fixture
def admin_api(db: None) -> Any:
    """A DRF API client authenticated with a fresh admin-scope API key (Bearer)."""
    from rest_framework.test import APIClient

    from tests.factories import ApiKeyFactory

    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return api


@pytest.fixture(scope="session", autouse=True)
def _close_stray_database_sessions(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """Before the test database is dropped, end the sessions that server threads and
    subprocesses left open (PostgreSQL refuses to drop a database in use)."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _empty_usage_stream(settings: pytest.FixtureRequest) -> None:
    """Usage stream entries of an earlier test (a killed gateway process) belong to its
    database, now emptied: they must not land in this test's."""
    if settings.REDIS_URL:  # type: ignore[attr-defined]
        from gateway.redis_client import get_sync_redis
        from gateway.usage_stream import stream_key

        get_sync_redis().delete(stream_key())


@pytest.fixture(scope="session")
def live_gateway(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[LiveGateway]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        server = LiveGateway().start()
    yield server
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        server.stop()


@pytest.fixture
def gateway(live_gateway: LiveGateway, transactional_db: None) -> Iterator[LiveGateway]:
    """The running gateway, on a database that this test may fill and that is emptied after it."""
    snapshot_mark_dirty()
    asyncio.run(get_state().reset())  # cooldowns and breakers of one test must not steer the next
    yield live_gateway
    # Let requests this test left behind (cancelled, disconnected) finish and be recorded
    # before the database is emptied, so that no record leaks into the next test.
    live_gateway.wait_idle()
    recorder.flush(10)


# CI sets OMNIROUTE_FAIL_ON_SKIP=1: a skipped test there means a configuration is not tested.
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import os

    if os.environ.get("OMNIROUTE_FAIL_ON_SKIP") == "1" and _skipped and exitstatus == 0:
        print(f"\n{len(_skipped)} test(s) skipped, which CI does not allow: {', '.join(_skipped[:10])}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
