from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone


class UsageRecord(models.Model):
    """One row per /v1 request, written in batches by the recorder.

    Keys and connections are referenced by id without a foreign-key constraint so that
    deleting a key or connection keeps its history; `api_key_name` keeps the key's name as it
    was when the request was recorded.
    """

    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=64, db_index=True)
    endpoint = models.CharField(max_length=64)
    client_format = models.CharField(max_length=32, blank=True)
    api_key_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    api_key_name = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    connection_id = models.BigIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField()
    stream = models.BooleanField(default=False)
    # prompt_tokens counts every input token, cached and cache-creation ones included;
    # completion_tokens counts the reasoning tokens too (the OpenAI convention).
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_creation_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    audio_seconds = models.FloatField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["provider", "created_at"]),
            models.Index(fields=["api_key_id", "created_at"]),
            models.Index(fields=["connection_id", "created_at"], name="usage_record_conn_time_idx"),
            models.Index(fields=["model", "created_at"], name="usage_record_model_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.provider}/{self.model} {self.status_code}"


def _price_field() -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=10, null=True, blank=True)


class PriceOverride(models.Model):
    """An operator's prices for one provider/model, field by field over the shipped catalog.

    Token prices are USD per 1M tokens; empty fields keep the catalog's price.
    """

    provider = models.CharField(max_length=100, help_text="Catalog provider id or node prefix")
    model = models.CharField(max_length=200)
    input = _price_field()
    output = _price_field()
    cached = _price_field()
    cache_creation = _price_field()
    reasoning = _price_field()
    per_image = _price_field()
    per_audio_second = _price_field()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model"]
        constraints = [models.UniqueConstraint(fields=["provider", "model"], name="price_override_unique")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class AuditEntry(models.Model):
    """One change to the configuration (or a login event): who, what, before/after, from where.

    `changes` is `{field: [before, after]}` with camelCase field names; secret fields appear
    only as the string "[changed]". Written by usage.services.audit, never edited.
    """

    ACTIONS = [
        ("create", "Create"),
        ("update", "Update"),
        ("delete", "Delete"),
        ("login", "Login"),
        ("login_failed", "Login failed"),
        ("logout", "Logout"),
    ]

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=200, help_text='A username, "key:<prefix>" or "system"')
    actor_ip = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=16, choices=ACTIONS)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_type} {self.target_repr}"


class Budget(models.Model):
    """A spending cap of one API key per calendar period (see gateway.limits and docs/API.md §8)."""

    PERIODS = [("daily", "Daily"), ("weekly", "Weekly"), ("monthly", "Monthly")]

    api_key = models.OneToOneField("gateway.ApiKey", on_delete=models.CASCADE, related_name="budget")
    limit_usd = models.DecimalField(max_digits=16, decimal_places=8, help_text="USD per period")
    period = models.CharField(max_length=16, choices=PERIODS, default="monthly")
    warning_threshold = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.8"), help_text="Fraction of the limit that sets `warning`"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["api_key_id"]

    def __str__(self) -> str:
        return f"{self.api_key.name}: {self.limit_usd} USD {self.period}"


class RequestLog(models.Model):
    """A /v1 request with its bodies (written with its UsageRecord, in the same batch).

    Only written while REQUEST_LOG_BODIES is on. Credential headers are never captured and
    secrets are scrubbed from every text before it is stored; keys marked noLog get a row
    without headers or bodies. Bodies are cut at REQUEST_LOG_MAX_BODY_BYTES (the flags say so).
    """

    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=64, db_index=True)
    endpoint = models.CharField(max_length=64)
    client_format = models.CharField(max_length=32, blank=True)
    api_key_id = models.BigIntegerField(null=True, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    connection_id = models.BigIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField()
    stream = models.BooleanField(default=False)
    latency_ms = models.FloatField(default=0)
    bodies_logged = models.BooleanField(default=True, help_text="False for keys marked noLog")
    request_headers = models.JSONField(null=True, blank=True)
    request_body = models.TextField(blank=True)
    response_body = models.TextField(blank=True)
    request_truncated = models.BooleanField(default=False)
    response_truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["api_key_id", "created_at"], name="request_log_key_time_idx"),
            models.Index(fields=["provider", "created_at"], name="request_log_provider_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.request_id} {self.status_code}"
