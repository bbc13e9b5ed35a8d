"""POST/GET /v1/images/generations end to end with the openai SDK, per provider."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.fakes.media_format import PNG_B64
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

from .helpers import client, combo, connect, make_key, records

pytestmark = pytest.mark.e2e


def test_openai_dall_e_urls_and_revised_prompt(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai", key="sk-img")
    key = make_key()

    result = client(gateway, key).images.generate(
        model="openai/dall-e-3", prompt="a red fox", size="1024x1024", quality="hd", style="vivid"
    )

    assert result.data is not None and result.data[0].url == "https://images.fake/dall-e-3/0.png"
    assert result.data[0].revised_prompt == "A detailed a red fox"
    sent = fake_provider.requests[-1].json
    assert sent == {
        "model": "dall-e-3",
        "prompt": "a red fox",
        "n": 1,
        "size": "1024x1024",
        "quality": "hd",
        "style": "vivid",
        "response_format": "url",
    }
    [rec] = records(gateway)
    assert (rec.provider, rec.model, rec.images, rec.status_code) == ("openai", "dall-e-3", 1, 200)
    assert float(rec.cost_usd) == pytest.approx(0.04)


def test_gpt_image_gets_no_response_format(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    key = make_key()

    result = client(gateway, key).images.generate(
        model="openai/gpt-image-1", prompt="p", n=2, response_format="b64_json"
    )

    assert result.data is not None and [d.b64_json for d in result.data] == [PNG_B64, PNG_B64]
    assert "response_format" not in fake_provider.requests[-1].json
    [rec] = records(gateway)
    assert rec.images == 2


def test_xai_drops_size_quality_style(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "xai")
    key = make_key()

    result = client(gateway, key).images.generate(
        model="xai/grok-imagine-image", prompt="p", size="1024x1024", response_format="b64_json"
    )

    assert result.data is not None and result.data[0].b64_json == PNG_B64
    assert fake_provider.requests[-1].json == {
        "model": "grok-imagine-image",
        "prompt": "p",
        "n": 1,
        "response_format": "b64_json",
    }


def test_together_flux_width_height(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "together")
    key = make_key()

    result = client(gateway, key).images.generate(
        model="together/black-forest-labs/FLUX.1-schnell", prompt="p", size="1024x768", response_format="b64_json"
    )

    assert result.data is not None and result.data[0].b64_json == PNG_B64
    sent = fake_provider.requests[-1].json
    assert (sent["width"], sent["height"], sent["response_format"]) == (1024, 768, "base64")
    assert "size" not in sent


def test_fireworks_flux_workflow(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "fireworks")
    key = make_key()
    model = "accounts/fireworks/models/flux-1-schnell-fp8"
    sdk = client(gateway, key)

    as_b64 = sdk.images.generate(model=f"fireworks/{model}", prompt="p", size="1024x576", response_format="b64_json")
    as_url = sdk.images.generate(model=f"fireworks/{model}", prompt="p", n=2)

    assert as_b64.data is not None and as_b64.data[0].b64_json == PNG_B64
    assert as_url.data is not None and [d.url for d in as_url.data] == [f"data:image/jpeg;base64,{PNG_B64}"] * 2
    first, second = fake_provider.requests
    assert first.path == f"/v1/workflows/{model}/text_to_image"
    assert first.json == {"prompt": "p", "aspect_ratio": "16:9"}
    assert second.json == {"prompt": "p", "samples": 2}
    assert [r.images for r in records(gateway)] == [1, 2]

    with pytest.raises(openai.BadRequestError, match=r"Size 1792x1024 \(aspect ratio 7:4\) is not supported"):
        sdk.images.generate(model=f"fireworks/{model}", prompt="p", size="1792x1024")


def test_fallback_between_two_image_providers(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    connect(fake_provider, "together")
    combo("img", ["openai/dall-e-3", "together/black-forest-labs/FLUX.1-schnell"])
    key = make_key()
    fake_provider.behave(Behaviour(status=500), model="dall-e-3")

    raw = client(gateway, key).images.with_raw_response.generate(model="img", prompt="p")

    assert raw.headers["x-omniroute-provider"] == "together"
    assert len(fake_provider.requests) == 2


def test_pinned_images_and_listing(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "xai")
    key = make_key()
    pinned = openai.OpenAI(base_url=f"{gateway.base_url}/providers/xai", api_key=key, max_retries=0)

    result = pinned.images.generate(model="grok-imagine-image", prompt="p")
    listing = httpx.get(f"{gateway.base_url}/images/generations", headers={"Authorization": f"Bearer {key}"})

    assert result.data is not None and result.data[0].url
    assert [m["id"] for m in listing.json()["data"]] == ["xai/grok-imagine-image"]
    assert listing.json()["data"][0]["type"] == "image"
