"""Admin for the response cache's database tier: operators can see and delete entries; they are
written only by the gateway (docs/API.md §11)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import CacheEntry


@admin.register(CacheEntry)
class CacheEntryAdmin(admin.ModelAdmin):
    list_display = ("model", "requested", "size", "semantic", "created_at", "expires_at")
    list_filter = ("model",)
    search_fields = ("model", "requested", "key")
    ordering = ("-created_at",)
    fields = ("key", "model", "requested", "scope", "size", "created_at", "expires_at")
    readonly_fields = fields

    @admin.display(boolean=True, description="Semantic")
    def semantic(self, obj: CacheEntry) -> bool:
        return obj.embedding is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CacheEntry | None = None) -> bool:
        return False
