"""Admin for the runtime settings (one row, edited as a form with one section per feature)
and temporary IP bans. Address lists are edited one per line, validated by the same service
as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from .admin import add_domain_error
from .api.errors import DomainError
from .models import GatewaySettings, IpBan
from .options.netfilter import request_client_ip
from .services.settings import LIST_FIELDS, lockout_check, network_list_normalize, settings_validate


class LinesField(forms.Field):
    """A list of strings edited as text, one per line (commas accepted too)."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = value if isinstance(value, str) else ""
        return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


class GatewaySettingsForm(forms.ModelForm):
    ip_allowlist = LinesField(required=False, help_text="One IP or CIDR network per line (v4 or v6)")
    ip_blocklist = LinesField(required=False, help_text="One IP or CIDR network per line (v4 or v6)")
    trusted_proxies = LinesField(required=False, help_text="Added to TRUSTED_PROXIES; one IP or CIDR per line")

    class Meta:
        model = GatewaySettings
        exclude: list[str] = []

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        probe = GatewaySettings(
            **{k: v for k, v in cleaned.items() if k in {f.name for f in GatewaySettings._meta.fields}}
        )
        try:
            settings_validate(probe)
            lockout_check(probe, getattr(self, "caller_ip", None))
        except DomainError as exc:
            add_domain_error(self, exc)
            return cleaned
        for name in LIST_FIELDS:
            cleaned[name] = getattr(probe, name)
        return cleaned


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(admin.ModelAdmin):
    form = GatewaySettingsForm
    readonly_fields = ("updated_at",)
    fieldsets = (
        ("Global system prompt", {"fields": ("system_prompt_enabled", "system_prompt")}),
        ("Thinking budget", {"fields": ("thinking_mode", "thinking_custom_budget", "thinking_effort_level")}),
        ("IP filter", {"fields": ("ip_filter_enabled", "ip_filter_mode", "ip_allowlist", "ip_blocklist")}),
        ("General", {"fields": ("trusted_proxies", "log_requests", "connection_selection", "updated_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not GatewaySettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """One row: the list is the form."""
        row, _ = GatewaySettings.objects.get_or_create(pk=1)
        return HttpResponseRedirect(reverse("admin:gateway_gatewaysettings_change", args=[row.pk]))

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.caller_ip = request_client_ip(request)  # type: ignore[attr-defined]
        return form


class IpBanForm(forms.ModelForm):
    class Meta:
        model = IpBan
        fields = ["address", "until", "reason"]

    def clean_address(self) -> str:
        try:
            return network_list_normalize([self.cleaned_data.get("address", "")], field="address")[0]
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(IpBan)
class IpBanAdmin(admin.ModelAdmin):
    form = IpBanForm
    list_display = ("address", "until", "reason", "created_at")
    search_fields = ("address", "reason")
