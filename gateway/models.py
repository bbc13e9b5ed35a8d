from __future__ import annotations

from django.db import models


class ApiKey(models.Model):
    """A client key of the gateway. Only a SHA-256 hash of the secret is stored."""

    SCOPE_INFERENCE = "inference"
    SCOPE_ADMIN = "admin"
    SCOPES = [(SCOPE_INFERENCE, "Inference"), (SCOPE_ADMIN, "Admin")]

    name = models.CharField(max_length=200)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="The first characters, to recognise a key by")
    scope = models.CharField(max_length=16, choices=SCOPES, default=SCOPE_INFERENCE)
    is_active = models.BooleanField(default=True)
    allowed_models = models.JSONField(
        default=list, blank=True, help_text='Empty = all. Exact ids, "provider/*" or globs like "openai/gpt-4*"'
    )
    max_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_requests_per_day = models.PositiveIntegerField(null=True, blank=True)
    no_log = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ConfigVersion(models.Model):
    """A single row whose counter rises on every configuration change.

    Gateway processes compare it with the version of their in-memory snapshot.
    """

    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
