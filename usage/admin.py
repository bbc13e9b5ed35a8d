"""Usage records, read-only: they are written by the gateway's recorder, never by hand."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import UsageRecord


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
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "endpoint",
        "provider",
        "model",
        "status_code",
        "stream",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "api_key_id",
    )
    list_filter = (StatusClassFilter, "provider", "stream", "endpoint")
    search_fields = ("request_id", "model", "provider")
    date_hierarchy = "created_at"
    show_full_result_count = False  # counting a big usage table on every page is slow
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False
