"""factory_boy factories for the configuration models."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import User
from factory.django import DjangoModelFactory, Password

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey
from providers.models import ProviderConnection

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
