"""Admin for API keys and routing (aliases, combos, resilience profiles). Saving and deleting
go through the same services as the API; forms check input with the services' validators.

The secret is shown once, in a message right after creation; the hash is never shown.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .api.errors import DomainError
from .models import ApiKey, Combo, ModelAlias, ResilienceProfile
from .selectors import combo_referrers
from .services import (
    API_KEY_EDITABLE_FIELDS,
    COMBO_EDITABLE_FIELDS,
    alias_delete,
    alias_set,
    alias_update,
    alias_validate,
    api_key_create,
    api_key_delete,
    api_key_update,
    combo_create,
    combo_delete,
    combo_update,
    combo_validate,
    resilience_profile_delete,
    resilience_profile_validate,
    resilience_profiles_update,
)
from .services.resilience import PROFILE_RULES

ModelT = TypeVar("ModelT", bound=Model)

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
    "max_sessions",
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


def add_domain_error(form: forms.BaseForm, exc: DomainError, fields: dict[str, str] | None = None) -> None:
    """Show a service's error on the form field it names (wire names mapped by `fields`)."""
    name = (exc.field or "").split(".")[0].split("[")[0]
    name = (fields or {}).get(name, name)
    form.add_error(name if name in form.fields else None, exc.message)


def with_values(instance: ModelT, cleaned: dict[str, Any]) -> ModelT:
    """A copy of the form's instance with the cleaned values, for a service to validate
    without touching the instance the admin will save."""
    probe = copy.copy(instance)
    for field, value in cleaned.items():
        setattr(probe, field, value)
    return probe


class ModelAliasForm(forms.ModelForm):
    class Meta:
        model = ModelAlias
        fields = ["alias", "model"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("alias") and cleaned.get("model"):
            try:
                cleaned["alias"], cleaned["model"] = alias_validate(alias=cleaned["alias"], model=cleaned["model"])
            except DomainError as exc:
                add_domain_error(self, exc)
        return cleaned


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    form = ModelAliasForm
    list_display = ("alias", "model", "updated_at")
    search_fields = ("alias", "model")
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: ModelAlias, form: forms.ModelForm, change: bool) -> None:
        alias, model = form.cleaned_data["alias"], form.cleaned_data["model"]
        if change:
            alias_update(alias=obj, new_alias=alias, model=model)
            return
        row, _ = alias_set(alias=alias, model=model)
        obj.pk = row.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: ModelAlias) -> None:
        alias_delete(alias=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ModelAlias]) -> None:
        for alias in queryset:
            alias_delete(alias=alias)


COMBO_FORM_FIELDS = ["name", "members", "strategy", "config", "is_active", "sort_order"]


class ComboForm(forms.ModelForm):
    class Meta:
        model = Combo
        fields = COMBO_FORM_FIELDS
        help_texts = {
            "members": 'JSON list: "provider/model", a combo name, or {"model": "provider/model", "weight": 0-100}',
            "config": 'JSON object, e.g. {"maxAttempts": 3, "timeoutMs": 30000}',
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        probe = with_values(self.instance, cleaned)
        probe.config = probe.config if probe.config is not None else {}
        try:
            combo_validate(probe)
        except DomainError as exc:
            add_domain_error(self, exc, {"models": "members"})
            return cleaned
        cleaned.update(name=probe.name, members=probe.members, config=probe.config)
        return cleaned


@admin.register(Combo)
class ComboAdmin(admin.ModelAdmin):
    form = ComboForm
    list_display = ("name", "strategy", "member_count", "is_active", "sort_order", "updated_at")
    list_filter = ("strategy", "is_active")
    search_fields = ("name",)
    ordering = ("sort_order", "name")
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="Models")
    def member_count(self, obj: Combo) -> int:
        return len(obj.members or [])

    def save_model(self, request: HttpRequest, obj: Combo, form: forms.ModelForm, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in COMBO_FORM_FIELDS if f in COMBO_EDITABLE_FIELDS}
        if change:
            combo_update(combo=obj, data=data)
            return
        combo = combo_create(**data)
        obj.pk = combo.pk
        obj.refresh_from_db()

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, Any, list[str]]:
        """A combo that other combos use is shown as protected, so the admin refuses to delete it."""
        deleted, counts, perms, protected = super().get_deleted_objects(objs, request)
        names = {c.name for c in objs}
        for combo in objs:
            users = [u for u in combo_referrers(name=combo.name) if u not in names]
            protected = [*protected, *(f"Combo {u} uses combo {combo.name}" for u in users)]
        return deleted, counts, perms, protected

    def delete_model(self, request: HttpRequest, obj: Combo) -> None:
        combo_delete(combo=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Combo]) -> None:
        # Users before the combos they use: a selection may hold both.
        pending = list(queryset)
        while pending:
            free = [c for c in pending if not set(combo_referrers(name=c.name)) & {p.name for p in pending}]
            for combo in free or pending[:1]:
                combo_delete(combo=combo)
                pending.remove(combo)


class ResilienceProfileForm(forms.ModelForm):
    class Meta:
        model = ResilienceProfile
        fields = ["auth_type", *PROFILE_RULES]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            resilience_profile_validate(with_values(self.instance, cleaned))
        except DomainError as exc:
            add_domain_error(self, exc)
        return cleaned


@admin.register(ResilienceProfile)
class ResilienceProfileAdmin(admin.ModelAdmin):
    form = ResilienceProfileForm
    list_display = (
        "auth_type",
        "cooldown_base_seconds",
        "cooldown_max_seconds",
        "backoff_multiplier",
        "breaker_failure_threshold",
        "breaker_reset_seconds",
        "credit_error_cooldown_seconds",
    )
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: ResilienceProfile | None = None) -> tuple[str, ...]:
        # The auth type is the profile's identity; a new one is a new row.
        return ("auth_type", "updated_at") if obj else ("updated_at",)

    def has_delete_permission(self, request: HttpRequest, obj: ResilienceProfile | None = None) -> bool:
        return obj is None or obj.auth_type != "default"

    def save_model(self, request: HttpRequest, obj: ResilienceProfile, form: forms.ModelForm, change: bool) -> None:
        values = {f: form.cleaned_data[f] for f in PROFILE_RULES}
        saved = resilience_profiles_update(changes={obj.auth_type: values})
        obj.pk = next(p.pk for p in saved if p.auth_type == obj.auth_type)
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: ResilienceProfile) -> None:
        resilience_profile_delete(profile=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ResilienceProfile]) -> None:
        for profile in queryset.exclude(auth_type="default"):
            resilience_profile_delete(profile=profile)
