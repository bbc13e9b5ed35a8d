from __future__ import annotations

from django.db import models

from .crypto import decrypt_secret, encrypt_secret, mask_secret


class ProviderConnection(models.Model):
    """One account (credential) of a provider. The API key is stored encrypted."""

    provider = models.CharField(max_length=100, db_index=True, help_text="Catalog provider id, e.g. openai")
    name = models.CharField(max_length=200)
    priority = models.PositiveIntegerField(default=1, help_text="Lower is tried first")
    is_active = models.BooleanField(default=True)
    base_url = models.CharField(
        max_length=500,
        blank=True,
        help_text="Overrides the provider's default endpoint prefix, e.g. https://api.openai.com/v1",
    )
    default_model = models.CharField(max_length=200, blank=True)
    provider_specific_data = models.JSONField(default=dict, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_hint = models.CharField(max_length=32, blank=True, editable=False)
    test_status = models.CharField(max_length=20, blank=True)
    last_error = models.TextField(blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        indexes = [models.Index(fields=["provider", "is_active", "priority"])]

    def __str__(self) -> str:
        return f"{self.provider}: {self.name}"

    @property
    def api_key(self) -> str:
        return decrypt_secret(self.api_key_encrypted)

    def set_api_key(self, plain: str) -> None:
        self.api_key_encrypted = encrypt_secret(plain)
        self.api_key_hint = mask_secret(plain)


class ProviderNode(models.Model):
    """A custom OpenAI- or Anthropic-compatible endpoint, routed as `<prefix>/<model>`.

    To the data plane it is one more catalog provider whose id is `prefix`; its connections
    (credentials) are ordinary ProviderConnection rows with `provider = prefix`.
    """

    TYPE_OPENAI = "openai-compatible"
    TYPE_ANTHROPIC = "anthropic-compatible"
    TYPES = [(TYPE_OPENAI, "OpenAI-compatible"), (TYPE_ANTHROPIC, "Anthropic-compatible")]
    API_CHAT = "chat"
    API_RESPONSES = "responses"
    API_TYPES = [(API_CHAT, "Chat Completions"), (API_RESPONSES, "Responses")]

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=50, unique=True, help_text="Routing prefix: models are called as prefix/model")
    type = models.CharField(max_length=32, choices=TYPES, default=TYPE_OPENAI)
    api_type = models.CharField(max_length=16, choices=API_TYPES, default=API_CHAT)
    base_url = models.CharField(max_length=500, help_text="e.g. https://llm.internal.example.com/v1")
    chat_path = models.CharField(max_length=200, blank=True, help_text="Empty = the format's default path")
    models_path = models.CharField(max_length=200, blank=True, help_text="Empty = /models")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["prefix"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


def default_endpoints() -> list[str]:
    return ["chat"]


class ProviderModel(models.Model):
    """A model the operator adds to a provider (catalog provider or custom node)."""

    FORMAT_CHAT = "chat-completions"
    FORMAT_RESPONSES = "responses"
    API_FORMATS = [(FORMAT_CHAT, "Chat Completions"), (FORMAT_RESPONSES, "Responses")]
    ENDPOINTS = ("chat", "embeddings", "images", "audio")

    provider = models.CharField(max_length=100, db_index=True, help_text="Catalog provider id or node prefix")
    model_id = models.CharField(max_length=200)
    model_name = models.CharField(max_length=200, blank=True)
    api_format = models.CharField(max_length=32, choices=API_FORMATS, default=FORMAT_CHAT)
    supported_endpoints = models.JSONField(
        default=default_endpoints, help_text='Any of ["chat", "embeddings", "images", "audio"]'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model_id"]
        constraints = [models.UniqueConstraint(fields=["provider", "model_id"], name="provider_model_unique")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model_id}"
