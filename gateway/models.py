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
    max_sessions = models.PositiveIntegerField(
        null=True, blank=True, help_text="Active client sessions this key may have at once; empty = no limit"
    )
    no_log = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ModelAlias(models.Model):
    """A bare model name (or glob: `*`, `?`) that routes to `provider/model`."""

    alias = models.CharField(max_length=200, unique=True)
    model = models.CharField(max_length=300, help_text="provider/model")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.alias} → {self.model}"


class Combo(models.Model):
    """A named list of models tried by a strategy; members are `provider/model`, combo names
    or `{"model", "weight"}` objects. Validated by gateway.services (cycles, depth, names)."""

    STRATEGIES = [
        ("priority", "Priority (in order)"),
        ("weighted", "Weighted"),
        ("round-robin", "Round robin"),
        ("random", "Random"),
        ("least-used", "Least used"),
        ("cost-optimized", "Cost optimized"),
        ("latency-optimized", "Latency optimized"),
    ]

    name = models.CharField(max_length=100, unique=True)
    # "models" on the wire; `members` here because a field named `models` would shadow django.db.models.
    members = models.JSONField(default=list, verbose_name="models")
    strategy = models.CharField(max_length=32, choices=STRATEGIES, default="priority")
    config = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name

    def member_models(self) -> list[str]:
        """The model string of each member, whether written "p/m", a combo name or {"model", "weight"}."""
        return [m.get("model", "") if isinstance(m, dict) else str(m) for m in self.members or []]


class ResilienceProfile(models.Model):
    """Cooldown and circuit-breaker numbers for the connections of one auth type.

    "default" always exists (seeded by a migration) and applies to auth types without a row.
    """

    AUTH_TYPES = [("default", "Default"), ("apikey", "API key"), ("oauth", "OAuth")]

    auth_type = models.CharField(max_length=16, choices=AUTH_TYPES, unique=True)
    cooldown_base_seconds = models.FloatField(default=1.0, help_text="First cooldown after a failure")
    cooldown_max_seconds = models.FloatField(default=300.0, help_text="Backoff never waits longer")
    backoff_multiplier = models.FloatField(default=2.0, help_text="Cooldown growth per consecutive failure")
    breaker_failure_threshold = models.PositiveIntegerField(default=5, help_text="Failures that open the breaker")
    breaker_reset_seconds = models.FloatField(default=30.0, help_text="Open time before a half-open probe")
    breaker_half_open_probes = models.PositiveIntegerField(default=1, help_text="Probes allowed while half-open")
    credit_error_cooldown_seconds = models.FloatField(
        default=3600.0, help_text="Cooldown after an out-of-credit or quota error"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["auth_type"]

    def __str__(self) -> str:
        return f"Resilience profile: {self.auth_type}"


class ConfigVersion(models.Model):
    """A single row whose counter rises on every configuration change.

    Gateway processes compare it with the version of their in-memory snapshot.
    """

    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
