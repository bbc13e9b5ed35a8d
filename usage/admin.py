"""Usage records, request logs, hourly roll-ups and the audit log, read-only (written by the recorder and the audit
signals, never by hand); price overrides, saved through the same services as the API."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from gateway.admin import add_domain_error
from gateway.api.errors import DomainError
from providers.selectors import provider_choices, provider_resolve

from .models import AuditEntry, Budget, PriceOverride, RequestLog, UsageRecord, UsageRollup
from .selectors import budget_status
from .services import (
    PRICE_OVERRIDE_FIELDS,
    budget_delete,
    budget_set,
    budget_values_clean,
    price_override_delete,
    price_override_set,
    price_value_clean,
)

PRICE_FORM_FIELDS = ["input", "output", "cached", "cache_creation", "reasoning", "per_image", "per_audio_second"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StatusClassFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("2xx", "Success (2xx)"), ("4xx", "Client error (4xx)"), ("5xx", "Server error (5xx)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
        value = self.value()
        if value in {"2xx", "4xx", "5xx"}:
            low = int(value[0]) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "endpoint",
        "provider",
        "model",
        "status_code",
        "stream",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "api_key_name",
    )
    list_filter = (StatusClassFilter, "provider", "stream", "endpoint")
    search_fields = ("request_id", "model", "provider")
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting a big usage table on every page is slow
    list_per_page = 100


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "request_id", "endpoint", "provider", "model", "status_code", "latency_ms")
    list_filter = (StatusClassFilter, "provider", "stream", "bodies_logged")
    search_fields = ("request_id", "model", "provider")
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_per_page = 100


class PriceOverrideForm(forms.ModelForm):
    class Meta:
        model = PriceOverride
        fields = ["provider", "model", *PRICE_FORM_FIELDS]
        help_texts = {
            name: "USD per 1M tokens; empty = the catalog price"
            for name in ("input", "output", "cached", "cache_creation", "reasoning")
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "provider" in self.fields:
            self.fields["provider"] = forms.ChoiceField(choices=provider_choices)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if all(cleaned.get(name) is None for name in PRICE_FORM_FIELDS):
            raise forms.ValidationError("Give at least one price.")
        for name in PRICE_FORM_FIELDS:
            try:
                price_value_clean(name, cleaned.get(name))
            except DomainError as exc:
                self.add_error(name, exc.message)
        if cleaned.get("provider"):
            try:
                cleaned["provider"] = provider_resolve(name=cleaned["provider"]).id
            except DomainError as exc:
                add_domain_error(self, exc)
        return cleaned


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    form = PriceOverrideForm
    list_display = ("provider", "model", *PRICE_FORM_FIELDS, "updated_at")
    list_filter = ("provider",)
    search_fields = ("provider", "model")

    def get_readonly_fields(self, request: HttpRequest, obj: PriceOverride | None = None) -> tuple[str, ...]:
        # Provider and model identify the override; another model is another override.
        return ("provider", "model", "updated_at") if obj is not None else ("updated_at",)

    def save_model(self, request: HttpRequest, obj: PriceOverride, form: forms.ModelForm, change: bool) -> None:
        prices = {f: form.cleaned_data.get(f) for f in PRICE_FORM_FIELDS if f in PRICE_OVERRIDE_FIELDS}
        outcome = price_override_set(provider=obj.provider, model=obj.model, prices=prices)
        if outcome.row is not None:
            obj.pk = outcome.row.pk
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: PriceOverride) -> None:
        price_override_delete(row=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PriceOverride]) -> None:
        for row in queryset:
            price_override_delete(row=row)


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["api_key", "limit_usd", "period", "warning_threshold"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("limit_usd") is not None and cleaned.get("period"):
            try:
                budget_values_clean(
                    limit=cleaned["limit_usd"],
                    period=cleaned["period"],
                    warning_threshold=cleaned.get("warning_threshold"),
                )
            except DomainError as exc:
                add_domain_error(self, exc, {"limit": "limit_usd"})
        return cleaned


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """One budget per API key; saved through the same service as POST /api/usage/budget."""

    form = BudgetForm
    list_display = ("api_key", "limit_usd", "period", "warning_threshold", "spent_shown", "resets_at_shown")
    list_filter = ("period",)
    search_fields = ("api_key__name", "api_key__prefix")
    list_select_related = ("api_key",)

    def get_readonly_fields(self, request: HttpRequest, obj: Budget | None = None) -> tuple[str, ...]:
        return ("api_key", "updated_at") if obj is not None else ("updated_at",)

    @admin.display(description="Spent this period (USD)")
    def spent_shown(self, obj: Budget) -> str:
        return f"{budget_status(obj).spent:f}"

    @admin.display(description="Resets at")
    def resets_at_shown(self, obj: Budget) -> str:
        return budget_status(obj).resets_at.isoformat()

    def save_model(self, request: HttpRequest, obj: Budget, form: forms.ModelForm, change: bool) -> None:
        saved = budget_set(
            key_id=obj.api_key_id,
            limit=obj.limit_usd,
            period=obj.period,
            warning_threshold=obj.warning_threshold,
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Budget) -> None:
        budget_delete(budget=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Budget]) -> None:
        for row in queryset:
            budget_delete(budget=row)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "target_type", "target_repr", "actor_ip")
    list_filter = ("action", "target_type")
    search_fields = ("actor", "target_repr", "target_id", "request_id")
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_per_page = 100
    fields = (
        "created_at",
        "actor",
        "actor_ip",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "changes_shown",
        "request_id",
    )
    readonly_fields = fields

    @admin.display(description="Changes")
    def changes_shown(self, obj: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, indent=2, ensure_ascii=False))


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    """Written by the hourly roll-up (usage.services.rollups); the histograms stay out of the list."""

    list_display = (
        "hour",
        "provider",
        "model",
        "api_key_id",
        "connection_id",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
    )
    list_filter = ("provider", ("hour", admin.DateFieldListFilter))
    search_fields = ("provider", "model")
    date_hierarchy = "hour"
