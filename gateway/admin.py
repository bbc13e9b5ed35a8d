"""Admin for API keys. Saving and deleting go through the same services as the API.

The secret is shown once, in a message right after creation; the hash is never shown.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ApiKey
from .services import API_KEY_EDITABLE_FIELDS, api_key_create, api_key_delete, api_key_update

admin.site.site_header = "OmniRoute administration"
admin.site.site_title = "OmniRoute"
admin.site.index_title = "Configuration"

FORM_FIELDS = [
    "name",
    "scope",
    "is_active",
    "allowed_models",
    "max_requests_per_minute",
    "max_requests_per_day",
    "no_log",
]


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = FORM_FIELDS

    def clean_allowed_models(self) -> list[str]:
        value = self.cleaned_data.get("allowed_models") or []
        if not isinstance(value, list) or not all(isinstance(m, str) and m.strip() for m in value):
            raise forms.ValidationError('A JSON list of model patterns, e.g. ["openai/*", "claude/claude-3-5*"]')
        return [m.strip() for m in value]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix_shown", "scope", "is_active", "no_log", "created_at")
    list_filter = ("scope", "is_active", "no_log")
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix_shown", "created_at", "updated_at")
    fields = (*FORM_FIELDS, "prefix_shown", "created_at", "updated_at")
    date_hierarchy = "created_at"

    @admin.display(description="Key prefix", ordering="prefix")
    def prefix_shown(self, obj: ApiKey) -> str:
        return f"{obj.prefix}…" if obj.prefix else "(shown after saving)"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in FORM_FIELDS if f in form.cleaned_data and f in API_KEY_EDITABLE_FIELDS}
        if change:
            api_key_update(api_key=obj, data=data)
            return
        key, plain = api_key_create(**data)
        obj.pk = key.pk
        obj.refresh_from_db()
        messages.success(request, f"New API key: {plain} — copy it now, it will not be shown again.")

    def delete_model(self, request: HttpRequest, obj: ApiKey) -> None:
        api_key_delete(api_key=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_delete(api_key=key)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"allowed_models": []}
