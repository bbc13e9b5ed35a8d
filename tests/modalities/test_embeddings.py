"""POST/GET /v1/embeddings end to end with the openai SDK, per provider, with fallback."""

from __future__ import annotations

import httpx
import openai
import pytest

from gateway.models import Combo
from tests.fakes.media_format import vector
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

from .helpers import client, combo, connect, make_key, records

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "text-embedding-3-small"),
        ("nebius", "BAAI/bge-en-icl"),
        ("mistral", "mistral-embed"),
        ("together", "BAAI/bge-base-en-v1.5"),
        ("fireworks", "nomic-ai/nomic-embed-text-v1.5"),
        ("nvidia", "nvidia/nv-embedqa-e5-v5"),
        ("gemini", "gemini-embedding-001"),
    ],
)
def test_embeddings_per_provider(gateway: LiveGateway, fake_provider: FakeProvider, provider: str, model: str) -> None:
    connect(fake_provider, provider, key="sk-up")
    key = make_key()

    # The SDK asks for base64 by default and decodes it.
    result = client(gateway, key).embeddings.create(model=f"{provider}/{model}", input=["alpha", "beta gamma"])

    assert [item.index for item in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx(vector(0, 8), abs=1e-6)
    assert result.data[1].embedding == pytest.approx(vector(1, 8), abs=1e-6)
    assert result.model == model
    sent = fake_provider.requests[-1]
    if provider == "gemini":
        assert sent.path == f"/embed/v1beta/models/{model}:batchEmbedContents"
        assert [r["content"]["parts"][0]["text"] for r in sent.json["requests"]] == ["alpha", "beta gamma"]
    else:
        assert sent.path == "/v1/embeddings"
        assert sent.json["model"] == model and sent.json["encoding_format"] == "float"
        assert sent.headers["authorization"] == "Bearer sk-up"
    if provider == "nvidia":
        assert sent.json["input_type"] == "query"
    [rec] = records(gateway)
    assert (rec.provider, rec.model, rec.status_code, rec.endpoint) == (provider, model, 200, "/v1/embeddings")
    assert rec.prompt_tokens > 0
    assert result.usage.prompt_tokens == rec.prompt_tokens


def test_float_format_single_string_and_dimensions(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    key = make_key()
    fake_provider.behave(Behaviour(prompt_tokens=7))

    resp = httpx.post(
        f"{gateway.base_url}/embeddings",
        json={"model": "openai/text-embedding-3-small", "input": "hello", "dimensions": 4, "encoding_format": "float"},
        headers={"Authorization": f"Bearer {key}"},
    )

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["data"][0]["embedding"] == pytest.approx(vector(0, 4))
    assert body["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert fake_provider.requests[-1].json["dimensions"] == 4
    [rec] = records(gateway)
    assert rec.prompt_tokens == 7 and float(rec.cost_usd) == pytest.approx(7 * 0.02 / 1_000_000)


def test_token_arrays_on_openai(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    key = make_key()

    result = client(gateway, key).embeddings.create(model="openai/text-embedding-3-small", input=[[1, 2, 3], [4, 5]])

    assert len(result.data) == 2
    assert fake_provider.requests[-1].json["input"] == [[1, 2, 3], [4, 5]]


def test_mistral_dimensions_quirks(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "mistral")
    key = make_key()
    sdk = client(gateway, key)

    result = sdk.embeddings.create(model="mistral/codestral-embed", input="x", dimensions=6)
    assert len(result.data[0].embedding) == 6
    assert fake_provider.requests[-1].json["output_dimension"] == 6
    assert "dimensions" not in fake_provider.requests[-1].json

    with pytest.raises(openai.BadRequestError, match="'dimensions' is not supported by mistral/mistral-embed"):
        sdk.embeddings.create(model="mistral/mistral-embed", input="x", dimensions=6)


def test_fallback_between_two_embedding_providers(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai", key="sk-openai")
    connect(fake_provider, "nebius", key="sk-nebius")
    combo("embed-combo", ["openai/text-embedding-3-small", "nebius/BAAI/bge-en-icl"])
    key = make_key()
    fake_provider.behave(Behaviour(status=503), model="text-embedding-3-small")

    raw = client(gateway, key).embeddings.with_raw_response.create(model="embed-combo", input="fall back")

    assert raw.headers["x-omniroute-provider"] == "nebius"
    assert raw.parse().model == "BAAI/bge-en-icl"
    assert [r.headers["authorization"] for r in fake_provider.requests] == ["Bearer sk-openai", "Bearer sk-nebius"]
    [rec] = records(gateway)
    assert (rec.provider, rec.model, rec.status_code) == ("nebius", "BAAI/bge-en-icl", 200)


def test_combo_max_attempts(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    connect(fake_provider, "nebius")
    Combo.objects.create(
        name="one-try", members=["openai/text-embedding-3-small", "nebius/BAAI/bge-en-icl"], config={"maxAttempts": 1}
    )
    key = make_key()
    fake_provider.behave(Behaviour(status=503), model="text-embedding-3-small")

    with pytest.raises(openai.InternalServerError) as caught:
        client(gateway, key).embeddings.create(model="one-try", input="x")

    assert caught.value.status_code == 503
    assert len(fake_provider.requests) == 1


def test_pinned_provider_route(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "together")
    key = make_key()
    sdk = openai.OpenAI(base_url=f"{gateway.base_url}/providers/together", api_key=key, max_retries=0)

    result = sdk.embeddings.create(model="BAAI/bge-base-en-v1.5", input="pinned")
    assert result.model == "BAAI/bge-base-en-v1.5"

    with pytest.raises(openai.BadRequestError, match="does not belong to provider"):
        sdk.embeddings.create(model="openai/text-embedding-3-small", input="pinned")


def test_listing_shows_embedding_models_of_connected_providers(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    connect(fake_provider, "mistral")
    key = make_key()

    resp = httpx.get(f"{gateway.base_url}/embeddings", headers={"Authorization": f"Bearer {key}"})

    assert resp.status_code == 200
    listed = {m["id"]: m for m in resp.json()["data"]}
    assert set(listed) == {"mistral/mistral-embed", "mistral/codestral-embed"}
    assert listed["mistral/mistral-embed"]["dimensions"] == 1024
    assert listed["mistral/mistral-embed"]["type"] == "embedding"
    assert records(gateway) == []
