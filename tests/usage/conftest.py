from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import ApiKeyFactory


@pytest.fixture
def operator() -> APIClient:
    """A management API client with an admin-scope key."""
    _, plain = ApiKeyFactory.create_with_key(scope="admin", name="operator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def inference_client() -> APIClient:
    _, plain = ApiKeyFactory.create_with_key(scope="inference", name="app")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client
