"""Settings live in the database: a real server process started afterwards applies them, a
change through its API applies at once, a change made by another process reaches it within
the poll interval, and a restarted process still has them."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.test_openai_chat import make_key
from tests.factories import ApiKeyFactory
from tests.fakes.provider import FakeProvider
from tests.live_server import GatewayProcess
from tests.settings.helpers import MODELS, configure, connect_all, last_body

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def chat(proc: GatewayProcess, key: str, xff: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if xff:
        headers["X-Forwarded-For"] = xff
    body = {"model": MODELS["anthropic"], "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 9000}
    return httpx.post(f"{proc.base_url}/chat/completions", json=body, headers=headers, timeout=15)


def sent_system(fake: FakeProvider) -> str:
    system = last_body(fake)["system"]
    return system if isinstance(system, str) else "".join(block["text"] for block in system)


def test_settings_survive_restarts_and_apply_without_one(fake_provider: FakeProvider) -> None:
    connect_all(fake_provider)
    key = make_key()
    _, admin = ApiKeyFactory.create_with_key(scope="admin")
    configure(
        system_prompt_enabled=True,
        system_prompt="v1",
        thinking_mode="custom",
        thinking_custom_budget=4000,
        trusted_proxies=["127.0.0.1"],
        ip_filter_enabled=True,
        ip_blocklist=["203.0.113.0/24"],
    )
    proc = GatewayProcess().start()
    try:
        assert chat(proc, key).status_code == 200
        assert sent_system(fake_provider) == "v1"
        assert last_body(fake_provider)["thinking"] == {"type": "enabled", "budget_tokens": 4000}
        assert chat(proc, key, xff="203.0.113.5").status_code == 403

        changed = httpx.put(
            f"{proc.url}/api/settings/system-prompt",
            json={"prompt": "v2"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert changed.status_code == 200
        assert chat(proc, key).status_code == 200 and sent_system(fake_provider) == "v2"  # at once, same process

        configure(system_prompt="v3")  # written by this (another) process
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chat(proc, key)
            if sent_system(fake_provider) == "v3":
                break
            time.sleep(0.1)
        assert sent_system(fake_provider) == "v3"
        proc.terminate()

        proc = GatewayProcess().start()
        assert chat(proc, key).status_code == 200 and sent_system(fake_provider) == "v3"
        assert last_body(fake_provider)["thinking"]["budget_tokens"] == 4000
        assert chat(proc, key, xff="203.0.113.5").status_code == 403
    finally:
        proc.stop()
