"""Pytest fixtures for the fake provider; ``tests/conftest.py`` imports them for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.provider import FakeProvider


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """One fake provider server for the whole session."""
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_provider(fake_provider_server: FakeProvider) -> Iterator[FakeProvider]:
    """The session's fake provider, with no recorded requests and no scripted behaviours."""
    fake_provider_server.reset()
    yield fake_provider_server
