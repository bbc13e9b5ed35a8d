"""Admin for provider connections, custom nodes and custom models. The API key is a
write-only password input; saving goes through the same services as the API."""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from gateway.admin import add_domain_error, with_values
from gateway.api.errors import DomainError
from gateway.selectors import provider_references

from .models import ProviderConnection, ProviderModel, ProviderNode
from .selectors import provider_choices, provider_resolve
from .services import (
    CONNECTION_EDITABLE_FIELDS,
    NODE_EDITABLE_FIELDS,
    PROVIDER_MODEL_EDITABLE_FIELDS,
    base_url_normalize,
    connection_create,
    connection_delete,
    connection_test,
    connection_update,
    node_create,
    node_delete,
    node_update,
    node_validate,
    provider_model_delete,
    provider_model_set,
    provider_model_update,
    provider_model_validate,
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


def _running_cooldowns() -> dict[int, list[tuple[str | None, Any]]]:
    from gateway.runtime import connection_cooldowns

    try:
        return connection_cooldowns()
    except Exception:  # the admin page must render even when shared state is unreachable
        return {}


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(admin.ModelAdmin):
    form = ProviderConnectionForm
    list_display = (
        "name",
        "provider",
        "priority",
        "is_active",
        "api_key_hint",
        "runtime_status",
        "test_status",
        "last_tested_at",
    )
    list_filter = ("provider", "is_active", "test_status")
    search_fields = ("name", "provider", "base_url", "default_model")
    ordering = ("priority", "id")
    readonly_fields = (
        "api_key_hint",
        "runtime_status",
        "test_status",
        "last_error",
        "last_tested_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("provider", "name", "api_key", "api_key_hint", "priority", "is_active", "runtime_status")}),
        ("Endpoint", {"fields": ("base_url", "default_model", "provider_specific_data")}),
        ("Last test", {"fields": ("test_status", "last_error", "last_tested_at")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("test_connections",)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        self._cooldowns = _running_cooldowns()  # once per page, not once per row
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self._cooldowns = _running_cooldowns()
        return super().changeform_view(request, *args, **kwargs)

    @admin.display(description="Runtime")
    def runtime_status(self, obj: ProviderConnection) -> str:
        """Cooldowns the gateway put this account in (rate limits, exhausted credit, bad key)."""
        running = getattr(self, "_cooldowns", {}).get(obj.pk, [])
        if not running:
            return "ready"
        now = time.time()
        parts = []
        for model, cooldown in running:
            scope = f"{model}: " if model else ""
            parts.append(f"{scope}cooling down {max(0, int(cooldown.until - now))} s ({cooldown.reason[:120]})")
        return "; ".join(parts)

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


NODE_FORM_FIELDS = ["name", "prefix", "type", "api_type", "base_url", "chat_path", "models_path"]


class ProviderNodeForm(forms.ModelForm):
    class Meta:
        model = ProviderNode
        fields = NODE_FORM_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        probe = with_values(self.instance, {f: cleaned.get(f) or "" for f in NODE_FORM_FIELDS})
        try:
            node_validate(probe)
        except DomainError as exc:
            add_domain_error(self, exc)
            return cleaned
        cleaned.update({f: getattr(probe, f) for f in NODE_FORM_FIELDS})
        return cleaned


@admin.register(ProviderNode)
class ProviderNodeAdmin(admin.ModelAdmin):
    form = ProviderNodeForm
    list_display = ("name", "prefix", "type", "api_type", "base_url", "updated_at")
    list_filter = ("type", "api_type")
    search_fields = ("name", "prefix", "base_url")
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: ProviderNode, form: forms.ModelForm, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in NODE_FORM_FIELDS if f in NODE_EDITABLE_FIELDS}
        if change:
            node_update(node=obj, data=data)
            return
        node = node_create(**data)
        obj.pk = node.pk
        obj.refresh_from_db()

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[str]]:
        """Lists the connections and custom models that go with a node; aliases and combos
        routing to it protect it from deletion."""
        deleted, counts, perms, protected = super().get_deleted_objects(objs, request)
        for node in objs:
            deleted = [
                *deleted,
                *(f"Connection: {c}" for c in ProviderConnection.objects.filter(provider=node.prefix)),
                *(f"Custom model: {m}" for m in ProviderModel.objects.filter(provider=node.prefix)),
            ]
            protected = [
                *protected,
                *(f"{ref} routes to {node.prefix}" for ref in provider_references(provider_id=node.prefix)),
            ]
        return deleted, counts, perms, protected

    def delete_model(self, request: HttpRequest, obj: ProviderNode) -> None:
        node_delete(node=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProviderNode]) -> None:
        for node in queryset:
            node_delete(node=node)


class ProviderModelForm(forms.ModelForm):
    provider = forms.ChoiceField(choices=provider_choices)
    supported_endpoints = forms.MultipleChoiceField(
        choices=[(e, e) for e in ProviderModel.ENDPOINTS],
        widget=forms.CheckboxSelectMultiple,
        initial=["chat"],
    )

    class Meta:
        model = ProviderModel
        fields = ["provider", "model_id", "model_name", "api_format", "supported_endpoints"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        probe = with_values(self.instance, cleaned)
        probe.model_name = probe.model_name or ""
        try:
            provider_model_validate(probe)
        except DomainError as exc:
            add_domain_error(self, exc)
            return cleaned
        cleaned.update({f: getattr(probe, f) for f in self.Meta.fields})
        return cleaned


@admin.register(ProviderModel)
class ProviderModelAdmin(admin.ModelAdmin):
    form = ProviderModelForm
    list_display = ("model_id", "provider", "model_name", "api_format", "endpoints_shown", "updated_at")
    list_filter = ("provider", "api_format")
    search_fields = ("model_id", "model_name", "provider")
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="Endpoints")
    def endpoints_shown(self, obj: ProviderModel) -> str:
        return ", ".join(obj.supported_endpoints or [])

    def save_model(self, request: HttpRequest, obj: ProviderModel, form: forms.ModelForm, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in PROVIDER_MODEL_EDITABLE_FIELDS}
        if change:
            provider_model_update(row=obj, data=data)
            return
        row, _ = provider_model_set(**data)
        obj.pk = row.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: ProviderModel) -> None:
        provider_model_delete(row=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProviderModel]) -> None:
        for row in queryset:
            provider_model_delete(row=row)
