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
