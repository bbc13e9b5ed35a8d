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


def _count_field() -> models.BigIntegerField:
    return models.BigIntegerField(default=0)


class UsageRollup(models.Model):
    """The usage of one hour for one provider/model/key/connection, written by the hourly
    roll-up (usage.services.rollups), which recomputes whole hours so re-running never
    double counts. Kept longer than the raw records (ROLLUP_RETENTION_DAYS).

    `errors` counts statuses >= 400 and unset ones (< 100), as the usage history does; the
    other requests are the successful ones, whose latencies `latency_ms_sum` adds up (the
    history's exact mean latency).

    The histograms count successful requests in the fixed log-spaced buckets
    of gateway.telemetry.histogram (index i counts values <= BOUNDS[i] ms; trailing empty
    buckets are omitted), so percentiles can be estimated from any merge of rows.
    """

    hour = models.DateTimeField(help_text="Start of the hour (UTC)")
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    api_key_id = models.BigIntegerField(null=True, blank=True)
    connection_id = models.BigIntegerField(null=True, blank=True)
    requests = _count_field()
    errors = _count_field()
    prompt_tokens = _count_field()
    completion_tokens = _count_field()
    cached_tokens = _count_field()
    cache_creation_tokens = _count_field()
    reasoning_tokens = _count_field()
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    latency_histogram = models.JSONField(default=list, blank=True)
    ttft_histogram = models.JSONField(default=list, blank=True)
    latency_ms_sum = models.FloatField(
        null=True,
        blank=True,
        help_text="Sum of the successful requests' latency in ms (empty: rolled up before it was kept)",
    )

    class Meta:
        ordering = ["-hour", "provider", "model"]
        indexes = [
            models.Index(fields=["hour", "provider"], name="usage_rollup_hour_idx"),
            models.Index(fields=["api_key_id", "hour"], name="usage_rollup_key_hour_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.provider}/{self.model}"
