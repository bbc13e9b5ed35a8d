"""Reads of the providers app: the catalog as seen by operators (shipped catalog + custom nodes
and models), connections, upstream model lists."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from asgiref.sync import async_to_sync
from django.db.models import QuerySet

from gateway.api.errors import InvalidInput, NotFound, UpstreamFailed

from .adapters.base import auth_headers
from .catalog import Catalog, ModelInfo, ProviderInfo, get_catalog
from .models import ProviderConnection, ProviderModel, ProviderNode
from .outbound import close_session, fetch

UPSTREAM_TIMEOUT = 15.0


# Node type/apiType -> (wire format, auth style, fixed headers, default chat path).
_NODE_WIRE: dict[tuple[str, str], tuple[str, str, dict[str, str], str]] = {
    (ProviderNode.TYPE_OPENAI, ProviderNode.API_CHAT): ("openai", "bearer", {}, "/chat/completions"),
    (ProviderNode.TYPE_OPENAI, ProviderNode.API_RESPONSES): ("responses", "bearer", {}, "/responses"),
    (ProviderNode.TYPE_ANTHROPIC, ProviderNode.API_CHAT): (
        "anthropic",
        "x-api-key",
        {"anthropic-version": "2023-06-01"},
        "/messages",
    ),
}
# supportedEndpoints entry -> catalog model type; a model's type is its first endpoint's.
_ENDPOINT_TYPES = {"chat": "chat", "embeddings": "embedding", "images": "image", "audio": "audio"}


def node_wire(*, type_: str, api_type: str) -> tuple[str, str, dict[str, str], str]:
    return _NODE_WIRE[(type_, api_type)]


def node_provider_info(node: ProviderNode) -> ProviderInfo:
    """The catalog provider a node is to the data plane: id = its prefix."""
    wire_format, auth, headers, _ = node_wire(type_=node.type, api_type=node.api_type)
    return ProviderInfo(
        id=node.prefix,
        name=node.name,
        format=wire_format,
        base_url=node.base_url.rstrip("/"),
        auth=auth,
        headers=dict(headers),
        chat_path=node.chat_path,
        models_path=node.models_path,
        is_node=True,
    )


def custom_model_info(row: ProviderModel) -> ModelInfo:
    endpoints = tuple(row.supported_endpoints or ["chat"])
    return ModelInfo(
        id=row.model_id,
        type=_ENDPOINT_TYPES.get(endpoints[0], "chat"),
        name=row.model_name,
        custom=True,
        api_format=row.api_format,
        endpoints=endpoints,
    )


def catalog_current() -> Catalog:
    """The shipped catalog plus custom nodes (as providers) and custom models.

    The snapshot serves this to the data plane; the control plane validates against it.
    """
    models: dict[str, list[ModelInfo]] = {}
    for row in ProviderModel.objects.order_by("provider", "model_id"):
        models.setdefault(row.provider, []).append(custom_model_info(row))
    nodes = [node_provider_info(node) for node in ProviderNode.objects.order_by("prefix")]
    return get_catalog().with_additions(providers=nodes, models=models)


def provider_resolve(*, name: str) -> ProviderInfo:
    """A provider by catalog id, alias or node prefix, or a node by its numeric id.

    InvalidInput naming it when unknown.
    """
    name = name.strip()
    if name.isdigit():
        node = ProviderNode.objects.filter(pk=int(name)).first() if len(name) <= 18 else None
        if node is None:
            raise InvalidInput(
                f"Unknown provider {name!r}: no provider node has id {name} "
                "(give a provider id, alias or node prefix as a string, or an existing node id)",
                field="provider",
            )
        name = node.prefix
    info = catalog_current().resolve_provider(name) if name else None
    if info is None:
        raise InvalidInput(f"Unknown provider {name!r}", field="provider")
    return info


def provider_choices() -> list[tuple[str, str]]:
    def label(p: ProviderInfo) -> str:
        return f"{p.name} ({p.id}, custom node)" if p.is_node else f"{p.name} ({p.id})"

    return sorted(((p.id, label(p)) for p in catalog_current().providers.values()), key=lambda c: c[0])


def node_list() -> QuerySet[ProviderNode]:
    return ProviderNode.objects.order_by("prefix")


def node_get(*, node_id: int) -> ProviderNode:
    node = ProviderNode.objects.filter(pk=node_id).first()
    if node is None:
        raise NotFound(f"Provider node {node_id} not found")
    return node


def provider_model_list(*, provider: str | None = None) -> QuerySet[ProviderModel]:
    """Custom models, of one provider (id, alias or node prefix) when given."""
    queryset = ProviderModel.objects.order_by("provider", "model_id")
    return queryset.filter(provider=provider_resolve(name=provider).id) if provider is not None else queryset


def provider_model_get(*, provider: str, model_id: str) -> ProviderModel:
    info = provider_resolve(name=provider)
    row = ProviderModel.objects.filter(provider=info.id, model_id=model_id).first()
    if row is None:
        raise NotFound(f"Custom model {info.id}/{model_id} not found")
    return row


def connection_list(*, provider: str | None = None) -> QuerySet[ProviderConnection]:
    queryset = ProviderConnection.objects.order_by("priority", "id")
    return queryset.filter(provider=provider) if provider else queryset


def connection_get(*, connection_id: int) -> ProviderConnection:
    connection = ProviderConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        raise NotFound(f"Connection {connection_id} not found")
    return connection


@dataclass(frozen=True)
class UpstreamAnswer:
    """The outcome of one control-plane call to a provider; `error` is set on transport failure."""

    status: int | None
    body: bytes
    latency_ms: float
    error: str | None = None
    url: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def _get(url: str, headers: dict[str, str]) -> UpstreamAnswer:
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        resp = await fetch("GET", url, headers=headers, timeout=UPSTREAM_TIMEOUT)
        return UpstreamAnswer(status=resp.status, body=resp.body, latency_ms=round(resp.latency_ms, 1), url=url)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        reason = (
            f"timed out after {UPSTREAM_TIMEOUT:g}s"
            if isinstance(exc, TimeoutError)
            else str(exc) or type(exc).__name__
        )
        latency = round((loop.time() - started) * 1000, 1)
        return UpstreamAnswer(None, b"", latency, error=f"Cannot reach {url}: {reason}", url=url)
    finally:
        # This loop is ours (force_new_loop) and ends with this call: close its pooled session.
        await close_session()


def upstream_models_request(*, provider: ProviderInfo, api_key: str, base_url: str) -> UpstreamAnswer:
    """GET {base_url}/models with the provider's auth headers.

    Runs on a private event loop, so it neither blocks nor borrows the data plane's loop.
    """
    url = f"{(base_url or provider.base_url).rstrip('/')}{provider.models_path or '/models'}"
    return async_to_sync(_get, force_new_loop=True)(url, auth_headers(provider, api_key))


def upstream_error_message(answer: UpstreamAnswer, *, api_key: str) -> str:
    """What went wrong, from the provider's error body when it has one; the key is redacted."""
    if answer.error:
        return _redact(answer.error, api_key)
    detail = ""
    try:
        data: Any = orjson.loads(answer.body)
        error = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(error, dict):
            error = error.get("message") or error.get("status") or ""
        detail = str(error) if isinstance(error, str) else ""
    except orjson.JSONDecodeError:
        text = answer.body[:300].decode("utf-8", "replace").strip()
        detail = "" if text.startswith("<") else " ".join(text.split())  # an HTML error page says nothing useful
    message = f"Provider answered HTTP {answer.status}"
    if answer.status == 404:
        message += f" for GET {answer.url}; check the baseUrl"
    return _redact(f"{message}: {detail[:300]}" if detail else message, api_key)


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret and len(secret) >= 4 else text


def normalise_model_list(body: bytes) -> list[dict[str, str]]:
    """OpenAI/Anthropic `{"data":[{"id"}]}`, Gemini/Ollama `{"models":[{"name"}]}` → `[{"id"}]`."""
    data = orjson.loads(body)
    items = (data.get("data") or data.get("models") or []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("no model list in the answer")
    seen: dict[str, None] = {}
    for item in items:
        raw = item.get("id") or item.get("name") or item.get("model") if isinstance(item, dict) else item
        if isinstance(raw, str) and raw:
            seen[raw.removeprefix("models/")] = None
    return [{"id": model_id} for model_id in seen]


def connection_model_list(*, connection: ProviderConnection) -> list[dict[str, str]]:
    """The models the upstream lists for this connection; UpstreamFailed (502) when it cannot."""
    provider = provider_resolve(name=connection.provider)
    api_key = connection.api_key
    answer = upstream_models_request(provider=provider, api_key=api_key, base_url=connection.base_url)
    if not answer.ok:
        raise UpstreamFailed(upstream_error_message(answer, api_key=api_key))
    try:
        return normalise_model_list(answer.body)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        raise UpstreamFailed(f"The provider's model list is not in a known format: {exc}") from exc
