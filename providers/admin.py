"""Admin for provider connections. The API key is a write-only password input; saving goes
through the same services as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from gateway.api.errors import DomainError

from .models import ProviderConnection
from .selectors import provider_choices, provider_resolve
from .services import (
    CONNECTION_EDITABLE_FIELDS,
    base_url_normalize,
    connection_create,
    connection_delete,
    connection_test,
    connection_update,
)

FORM_FIELDS = [
    "provider",
    "name",
    "api_key",
    "base_url",
    "priority",
    "is_active",
    "default_model",
    "provider_specific_data",
]


class ProviderConnectionForm(forms.ModelForm):
    provider = forms.ChoiceField(choices=provider_choices)
    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted, never shown again. Leave empty to keep the stored key.",
    )

    class Meta:
        model = ProviderConnection
        fields = FORM_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.provider
        field = self.fields["provider"]
        assert isinstance(field, forms.ChoiceField)
        if current and current not in {value for value, _ in provider_choices()}:
            # A provider that left the catalog stays visible instead of being silently replaced.
            field.choices = [*provider_choices(), (current, f"{current} (not in catalog)")]

    def clean_base_url(self) -> str:
        try:
            return base_url_normalize(value=self.cleaned_data.get("base_url") or "")
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_provider_specific_data(self) -> dict[str, Any]:
        value = self.cleaned_data.get("provider_specific_data")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        provider = cleaned.get("provider")
        if provider and not cleaned.get("api_key") and not self.instance.api_key_encrypted:
            try:
                needs_key = provider_resolve(name=provider).auth != "none"
            except DomainError as exc:
                self.add_error("provider", exc.message)
                return cleaned
            if needs_key:
                self.add_error("api_key", "This provider needs an API key.")
        return cleaned


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(admin.ModelAdmin):
    form = ProviderConnectionForm
    list_display = ("name", "provider", "priority", "is_active", "api_key_hint", "test_status", "last_tested_at")
    list_filter = ("provider", "is_active", "test_status")
    search_fields = ("name", "provider", "base_url", "default_model")
    ordering = ("priority", "id")
    readonly_fields = ("api_key_hint", "test_status", "last_error", "last_tested_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("provider", "name", "api_key", "api_key_hint", "priority", "is_active")}),
        ("Endpoint", {"fields": ("base_url", "default_model", "provider_specific_data")}),
        ("Last test", {"fields": ("test_status", "last_error", "last_tested_at")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("test_connections",)

    def save_model(self, request: HttpRequest, obj: ProviderConnection, form: forms.ModelForm, change: bool) -> None:
        data = {
            f: form.cleaned_data[f] for f in FORM_FIELDS if f in form.cleaned_data and f in CONNECTION_EDITABLE_FIELDS
        }
        if change:
            connection_update(connection=obj, data=data)
            return
        connection = connection_create(**data)
        obj.pk = connection.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: ProviderConnection) -> None:
        connection_delete(connection=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProviderConnection]) -> None:
        for connection in queryset:
            connection_delete(connection=connection)

    @admin.action(description="Test selected connections against their provider")
    def test_connections(self, request: HttpRequest, queryset: QuerySet[ProviderConnection]) -> None:
        for connection in queryset:
            try:
                result = connection_test(connection=connection)
            except DomainError as exc:
                self.message_user(request, f"{connection}: {exc.message}", messages.ERROR)
                continue
            if result.valid:
                self.message_user(request, f"{connection}: OK ({result.latency_ms} ms)", messages.SUCCESS)
            else:
                self.message_user(request, f"{connection}: {result.error}", messages.WARNING)
