from __future__ import annotations

import pytest

from tests.live_server import LiveGateway
from tests.routing.helpers import Admin, make_key

pytestmark = pytest.mark.e2e


@pytest.fixture
def key(gateway: LiveGateway) -> str:
    return make_key()


@pytest.fixture
def admin(gateway: LiveGateway) -> Admin:
    return Admin(gateway)
