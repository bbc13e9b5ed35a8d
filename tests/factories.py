"""factory_boy factories for the configuration models and usage rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth.models import User
from django.utils import timezone
from factory.django import DjangoModelFactory, Password

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey, Combo, ModelAlias
from providers.models import ProviderConnection, ProviderModel, ProviderNode
from usage.models import PriceOverride, UsageRecord

ADMIN_PASSWORD = "correct horse battery staple"


class AdminUserFactory(DjangoModelFactory[User]):
    """A superuser whose password is ADMIN_PASSWORD unless given."""

    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = "admin"
    is_staff = True
    is_superuser = True
    is_active = True
    password = Password(ADMIN_PASSWORD)


class ApiKeyFactory(DjangoModelFactory[ApiKey]):
    """An API key; use `create_with_key` when the test needs the plain secret."""

    class Meta:
        model = ApiKey

    class Params:
        plain = factory.LazyFunction(generate_api_key)

    name = factory.Sequence(lambda n: f"key-{n}")
    scope = ApiKey.SCOPE_INFERENCE
    key_hash = factory.LazyAttribute(lambda o: hash_api_key(o.plain))
    prefix = factory.LazyAttribute(lambda o: visible_prefix(o.plain))

    @classmethod
    def create_with_key(cls, **kwargs: Any) -> tuple[ApiKey, str]:
        plain = generate_api_key()
        return cls.create(plain=plain, **kwargs), plain


class ProviderConnectionFactory(DjangoModelFactory[ProviderConnection]):
    """A connection whose key (`api_key`, default below) is stored encrypted via set_api_key."""

    class Meta:
        model = ProviderConnection

    provider = "openai"
    name = factory.Sequence(lambda n: f"connection-{n}")
    priority = 1
    api_key = "sk-test-factory-secret-0123456789"

    @classmethod
    def _build(cls, model_class: type[ProviderConnection], *args: Any, **kwargs: Any) -> ProviderConnection:
        api_key = kwargs.pop("api_key")
        connection = model_class(**kwargs)
        connection.set_api_key(api_key)
        return connection

    @classmethod
    def _create(cls, model_class: type[ProviderConnection], *args: Any, **kwargs: Any) -> ProviderConnection:
        connection = cls._build(model_class, *args, **kwargs)
        connection.save()
        return connection


class ModelAliasFactory(DjangoModelFactory[ModelAlias]):
    class Meta:
        model = ModelAlias

    alias = factory.Sequence(lambda n: f"alias-{n}")
    model = "openai/gpt-4o-mini"


class ComboFactory(DjangoModelFactory[Combo]):
    """A combo row as stored; it skips the service's validation, so keep members sensible."""

    class Meta:
        model = Combo

    name = factory.Sequence(lambda n: f"combo-{n}")
    members = factory.LazyFunction(lambda: ["openai/gpt-4o-mini", "groq/llama-3.3-70b-versatile"])
    strategy = "priority"
    sort_order = factory.Sequence(lambda n: n)


class ProviderNodeFactory(DjangoModelFactory[ProviderNode]):
    class Meta:
        model = ProviderNode

    name = factory.Sequence(lambda n: f"Node {n}")
    prefix = factory.Sequence(lambda n: f"node{n}")
    type = ProviderNode.TYPE_OPENAI
    api_type = ProviderNode.API_CHAT
    base_url = "http://127.0.0.1:9/v1"


class ProviderModelFactory(DjangoModelFactory[ProviderModel]):
    class Meta:
        model = ProviderModel

    provider = "openai"
    model_id = factory.Sequence(lambda n: f"custom-model-{n}")


class UsageRecordFactory(DjangoModelFactory[UsageRecord]):
    """A successful gpt-4o request, recorded now."""

    class Meta:
        model = UsageRecord

    created_at = factory.LazyFunction(timezone.now)
    request_id = factory.Sequence(lambda n: f"req-{n}")
    endpoint = "/v1/chat/completions"
    provider = "openai"
    model = "gpt-4o"
    status_code = 200
    prompt_tokens = 100
    completion_tokens = 20
    latency_ms = 120.0


class PriceOverrideFactory(DjangoModelFactory[PriceOverride]):
    class Meta:
        model = PriceOverride

    provider = "openai"
    model = factory.Sequence(lambda n: f"priced-model-{n}")
    input = Decimal("1")
    output = Decimal("2")
