"""providers.services and selectors below the HTTP layer."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from gateway.api.errors import InvalidInput
from providers.models import ProviderConnection
from providers.selectors import UpstreamAnswer, normalise_model_list, provider_resolve, upstream_error_message
from providers.services import base_url_normalize, connection_create, connection_test, connection_update
from tests.factories import ProviderConnectionFactory

pytestmark = pytest.mark.django_db


def test_connection_create_encrypts_and_canonicalises() -> None:
    connection = connection_create(provider="gh", name="  copilot ", api_key="  ghu_secret_token_1234 ")
    connection.refresh_from_db()
    assert connection.provider == "github"
    assert connection.name == "copilot"
    assert connection.api_key == "ghu_secret_token_1234"
    assert "ghu_secret_token_1234" not in connection.api_key_encrypted
    assert connection.api_key_hint == "ghu…1234"


def test_connection_create_requires_a_key() -> None:
    with pytest.raises(InvalidInput) as exc:
        connection_create(provider="openai", name="x", api_key="  ")
    assert exc.value.field == "api_key"
    assert not ProviderConnection.objects.exists()


def test_connection_update_keeps_or_rotates_key() -> None:
    connection = ProviderConnectionFactory.create(api_key="sk-original-000000")
    connection_update(connection=connection, data={"api_key": "", "priority": 4})
    connection.refresh_from_db()
    assert (connection.api_key, connection.priority) == ("sk-original-000000", 4)
    connection_update(connection=connection, data={"api_key": "sk-rotated-111111"})
    connection.refresh_from_db()
    assert connection.api_key == "sk-rotated-111111"


def test_connection_update_refuses_unknown_fields_and_bad_values() -> None:
    connection = ProviderConnectionFactory.create()
    with pytest.raises(InvalidInput):
        connection_update(connection=connection, data={"api_key_encrypted": "x"})
    with pytest.raises(ValidationError):
        connection_update(connection=connection, data={"name": ""})
    with pytest.raises(InvalidInput):
        connection_update(connection=connection, data={"provider_specific_data": ["not", "a", "dict"]})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
        ("  http://localhost:11434  ", "http://localhost:11434"),
        ("http://ollama:11434/v1", "http://ollama:11434/v1"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("", ""),
    ],
)
def test_base_url_normalize_accepts(raw: str, expected: str) -> None:
    assert base_url_normalize(value=raw) == expected


@pytest.mark.parametrize(
    "raw", ["ftp://x.org", "api.openai.com/v1", "http://", "http://a b/v1", "http://x:port/v1", "https://x.org/#f"]
)
def test_base_url_normalize_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        base_url_normalize(value=raw)
    assert exc.value.field == "base_url"


def test_provider_resolve() -> None:
    assert provider_resolve(name="CC").id == "claude"
    with pytest.raises(InvalidInput) as exc:
        provider_resolve(name="acme")
    assert "acme" in exc.value.message


def test_normalise_model_list_shapes() -> None:
    assert normalise_model_list(b'{"data":[{"id":"a"},{"id":"b"},{"id":"a"},7]}') == [{"id": "a"}, {"id": "b"}]
    assert normalise_model_list(b'{"models":[{"name":"models/g"},{"model":"llama3"}]}') == [
        {"id": "g"},
        {"id": "llama3"},
    ]
    assert normalise_model_list(b'["x", "y"]') == [{"id": "x"}, {"id": "y"}]
    with pytest.raises(ValueError):
        normalise_model_list(b"<html>")
    with pytest.raises(ValueError):
        normalise_model_list(b'{"data": "nope"}')


def test_upstream_error_message_redacts_the_key() -> None:
    answer = UpstreamAnswer(401, b'{"error":{"message":"bad key sk-live-secret-42"}}', 3.0)
    message = upstream_error_message(answer, api_key="sk-live-secret-42")
    assert message == "Provider answered HTTP 401: bad key [redacted]"
    transport = UpstreamAnswer(None, b"", 1.0, error="Cannot reach http://h/?k=sk-live-secret-42: refused")
    assert "sk-live-secret-42" not in upstream_error_message(transport, api_key="sk-live-secret-42")


def test_connection_test_with_undecryptable_key_reports_instead_of_crashing() -> None:
    connection = ProviderConnectionFactory.create(base_url="http://127.0.0.1:9/v1")
    ProviderConnection.objects.filter(pk=connection.pk).update(api_key_encrypted="gAAAAA-not-a-valid-token")
    connection.refresh_from_db()
    result = connection_test(connection=connection)
    assert result.valid is False
    assert result.error is not None and "STORAGE_ENCRYPTION_KEY" in result.error
    connection.refresh_from_db()
    assert connection.test_status == "error"


def test_upstream_error_message_for_html_404_points_at_base_url() -> None:
    answer = UpstreamAnswer(404, b"<!DOCTYPE html><h1>Not found</h1>", 2.0, url="http://h:1/wrong/models")
    message = upstream_error_message(answer, api_key="k")
    assert message == "Provider answered HTTP 404 for GET http://h:1/wrong/models; check the baseUrl"
