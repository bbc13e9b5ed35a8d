"""Semantic mode: a paraphrase of a cached question is served the cached answer; an unrelated
question is not. The fake provider's `*bow*` embedding model embeds texts as bags of words,
and the gateway calls it through itself (docs/API.md §11)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_openai_chat import client, make_connection, make_key, records
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

from .cache_helpers import upstream_chats

pytestmark = pytest.mark.e2e
MODEL = "openai/gpt-4o"


@pytest.fixture
def semantic(cache_on: Any) -> Any:
    cache_on.SEMANTIC_CACHE_ENABLED = True
    cache_on.SEMANTIC_CACHE_EMBEDDING_MODEL = "openai/text-embedding-bow"
    cache_on.SEMANTIC_CACHE_THRESHOLD = 0.6
    return cache_on


def chat(sdk: Any, text: str, *, system: str | None = None) -> Any:
    messages: Any = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return sdk.chat.completions.with_raw_response.create(model=MODEL, messages=messages, temperature=0)


def test_paraphrase_hits_and_unrelated_prompt_misses(
    gateway: LiveGateway, fake_provider: FakeProvider, semantic: Any
) -> None:
    make_connection(fake_provider.openai_base_url)
    fake_provider.behave(Behaviour(reply="Paris."))
    sdk = client(gateway, make_key())

    first = chat(sdk, "What is the capital city of France?")
    paraphrase = chat(sdk, "Tell me the capital city of France")
    unrelated = chat(sdk, "How do I bake sourdough bread at home?")
    other_context = chat(sdk, "Tell me the capital city of France", system="Answer in German.")

    assert first.headers["x-omniroute-cache"] == "MISS"
    assert paraphrase.headers["x-omniroute-cache"] == "HIT"
    assert paraphrase.parse().choices[0].message.content == "Paris."
    assert unrelated.headers["x-omniroute-cache"] == "MISS"
    # Only the last user message is compared: another system prompt is another scope.
    assert other_context.headers["x-omniroute-cache"] == "MISS"
    assert upstream_chats(fake_provider) == 3
    embedded = [r.json["input"] for r in fake_provider.requests if r.path == "/v1/embeddings"]
    assert embedded[:2] == ["What is the capital city of France?", "Tell me the capital city of France"]
    # The embeddings went through the gateway: they are usage of the embedding model.
    recs = records(gateway)
    assert any(r.endpoint == "/v1/embeddings" and r.model == "text-embedding-bow" for r in recs)


def test_a_failing_embedding_model_leaves_exact_matching(
    gateway: LiveGateway, fake_provider: FakeProvider, semantic: Any
) -> None:
    semantic.SEMANTIC_CACHE_EMBEDDING_MODEL = "nosuch/model"
    make_connection(fake_provider.openai_base_url)
    fake_provider.behave(Behaviour(reply="Paris."))
    sdk = client(gateway, make_key())

    assert chat(sdk, "What is the capital city of France?").headers["x-omniroute-cache"] == "MISS"
    assert chat(sdk, "Tell me the capital city of France").headers["x-omniroute-cache"] == "MISS"
    assert chat(sdk, "What is the capital city of France?").headers["x-omniroute-cache"] == "HIT"
    assert upstream_chats(fake_provider) == 2
