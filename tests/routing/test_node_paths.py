"""Custom provider nodes' `chatPath` reaches the upstream URL (OpenAI- and Anthropic-compatible)."""

from __future__ import annotations

import pytest

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Credential
from providers.adapters.openai import OpenAIAdapter
from providers.catalog import ProviderInfo
from providers.models import ProviderNode
from tests.fakes.provider import FakeProvider
from tests.live_server import LiveGateway
from tests.routing.helpers import chat, connect, served

CANONICAL = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def credential(fmt: str, chat_path: str) -> Credential:
    info = ProviderInfo(
        id="lab", name="Lab", format=fmt, base_url="https://llm.example.com/api", auth="bearer", chat_path=chat_path
    )
    return Credential.build(connection_id=1, provider=info, api_key="k", base_url=info.base_url, data={})


@pytest.mark.parametrize(
    ("adapter", "fmt", "chat_path", "url"),
    [
        (OpenAIAdapter(), "openai", "", "https://llm.example.com/api/chat/completions"),
        (
            OpenAIAdapter(),
            "openai",
            "/v2/chat?api-version=2024-06-01",
            "https://llm.example.com/api/v2/chat?api-version=2024-06-01",
        ),
        (AnthropicAdapter(), "anthropic", "", "https://llm.example.com/api/messages"),
        (AnthropicAdapter(), "anthropic", "/v1/complete-chat", "https://llm.example.com/api/v1/complete-chat"),
    ],
)
def test_adapters_use_the_nodes_chat_path(adapter: object, fmt: str, chat_path: str, url: str) -> None:
    cred = credential(fmt, chat_path)
    for stream in (False, True):
        assert adapter.chat_request(cred, "m", CANONICAL, stream=stream).url == url  # type: ignore[attr-defined]
        assert adapter.passthrough_request(cred, "m", dict(CANONICAL), stream=stream).url == url  # type: ignore[attr-defined]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("node_type", "chat_path", "upstream_path"),
    [
        (ProviderNode.TYPE_OPENAI, "/v1/chat/completions", "/v1/chat/completions"),
        (ProviderNode.TYPE_ANTHROPIC, "/v1/messages", "/v1/messages"),
    ],
)
def test_node_chat_path_end_to_end(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, node_type: str, chat_path: str, upstream_path: str
) -> None:
    # The base URL has no /v1: only the node's chat path makes the fake provider's route match.
    ProviderNode.objects.create(
        name="Lab", prefix="lab", type=node_type, base_url=fake_provider.url, chat_path=chat_path
    )
    connect(fake_provider.url, provider="lab")

    resp = chat(gateway, key, "lab/house-model")

    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "Hello from house-model!"
    assert served(resp) == "lab/house-model"
    assert [r.path for r in fake_provider.requests] == [upstream_path]
