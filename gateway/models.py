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
    max_tokens_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Prompt + completion tokens of the requests finished in the current minute"
    )
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


class CacheEntry(models.Model):
    """A cached chat answer (the persistent tier of the response cache on the embedded default).

    `body` is the stored canonical answer (JSON); `embedding` the float32 vector of the last
    user message when semantic matching is on, compared only within the same `scope`."""

    key = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=300, db_index=True, help_text="provider/model that answered")
    requested = models.CharField(max_length=300, db_index=True, help_text="The model name the client sent")
    scope = models.CharField(max_length=64, blank=True, db_index=True)
    embedding = models.BinaryField(null=True, blank=True)
    body = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "cache entries"

    def __str__(self) -> str:
        return f"{self.model} {self.key[:12]}"


class GatewaySettings(models.Model):
    """The operator's runtime settings: one row (pk=1), read through the config snapshot.

    Typed columns rather than a key/value table so that the admin shows a real form and the
    audit trail names each field that changed. Defaults are the "feature off" values.
    """

    THINKING_MODES = [
        ("passthrough", "Passthrough (untouched)"),
        ("auto", "Auto (the client's own request, else the effort level)"),
        ("custom", "Custom (always the budget and effort below)"),
        ("adaptive", "Adaptive (scaled with the request's size)"),
    ]
    EFFORT_LEVELS = [(v, v) for v in ("none", "minimal", "low", "medium", "high")]
    IP_FILTER_MODES = [("allowlist", "Allowlist (only listed addresses)"), ("blocklist", "Blocklist")]

    system_prompt_enabled = models.BooleanField(default=False)
    system_prompt = models.TextField(blank=True, help_text="Prepended to every chat-like request's system prompt")
    thinking_mode = models.CharField(max_length=16, choices=THINKING_MODES, default="passthrough")
    thinking_custom_budget = models.PositiveIntegerField(default=10240, help_text="Reasoning tokens, 0..131072")
    thinking_effort_level = models.CharField(max_length=8, choices=EFFORT_LEVELS, default="medium")
    ip_filter_enabled = models.BooleanField(default=False)
    ip_filter_mode = models.CharField(max_length=16, choices=IP_FILTER_MODES, default="blocklist")
    ip_allowlist = models.JSONField(default=list, blank=True, help_text="IPs and CIDR networks (v4 or v6)")
    ip_blocklist = models.JSONField(default=list, blank=True, help_text="IPs and CIDR networks (v4 or v6)")
    trusted_proxies = models.JSONField(
        default=list, blank=True, help_text="Proxies whose X-Forwarded-For is believed (added to TRUSTED_PROXIES)"
    )
    log_requests = models.BooleanField(null=True, blank=True, help_text="Empty: the LOG_REQUESTS environment value")
    connection_selection = models.CharField(
        max_length=500, blank=True, help_text='Empty: CONNECTION_SELECTION, e.g. "priority,openai=round-robin"'
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "settings"
        verbose_name_plural = "settings"

    def __str__(self) -> str:
        return "Gateway settings"


class IpBan(models.Model):
    """A temporary ban of an address or network; expired rows are ignored (and pruned on the next ban)."""

    address = models.CharField(max_length=64, help_text="An IP or CIDR network (v4 or v6)")
    until = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["until"]
        verbose_name = "IP ban"

    def __str__(self) -> str:
        return f"{self.address} until {self.until:%Y-%m-%d %H:%M:%S}"


class InitialPasswordMark(models.Model):
    """Which password `manage.py ensure_admin` last gave an operator account from
    INITIAL_PASSWORD: a SHA-256 of the account's stored password hash at that moment (no
    password material). While the account still has that hash, a changed INITIAL_PASSWORD is
    applied; once an operator has changed the password, ensure_admin leaves it alone."""

    username = models.CharField(max_length=150, unique=True)
    password_digest = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Initial password mark for {self.username}"
