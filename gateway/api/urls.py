"""Routes of the gateway app's management API (the `<id:...>` converter is registered by the site urls)."""

from . import cache_views, runtime_views, session_views, settings_views, views
from .base import route

urlpatterns = [
    *route("auth/login", views.LoginApi.as_view(), "api-auth-login"),
    *route("auth/logout", views.LogoutApi.as_view(), "api-auth-logout"),
    *route("auth/status", views.AuthStatusApi.as_view(), "api-auth-status"),
    *route("keys", views.ApiKeyListApi.as_view(), "api-keys"),
    *route("keys/<id:key_id>", views.ApiKeyDetailApi.as_view(), "api-key-detail"),
    *route("monitoring/health", views.HealthApi.as_view(), "api-health"),
    *route("models/alias", views.AliasApi.as_view(), "api-model-alias"),
    *route("combos", views.ComboListApi.as_view(), "api-combos"),
    *route("combos/test", runtime_views.ComboTestApi.as_view(), "api-combo-test"),
    *route("combos/<id:combo_id>", views.ComboDetailApi.as_view(), "api-combo-detail"),
    *route("resilience", views.ResilienceApi.as_view(), "api-resilience"),
    *route("resilience/reset", runtime_views.ResilienceResetApi.as_view(), "api-resilience-reset"),
    *route("models/availability", runtime_views.ModelAvailabilityApi.as_view(), "api-model-availability"),
    *route("rate-limits", runtime_views.RateLimitsApi.as_view(), "api-rate-limits"),
    *route("cache", cache_views.CacheApi.as_view(), "api-cache"),
    *route("settings", settings_views.GeneralSettingsApi.as_view(), "api-settings"),
    *route("settings/system-prompt", settings_views.SystemPromptApi.as_view(), "api-settings-system-prompt"),
    *route("settings/thinking-budget", settings_views.ThinkingBudgetApi.as_view(), "api-settings-thinking-budget"),
    *route("settings/ip-filter", settings_views.IpFilterApi.as_view(), "api-settings-ip-filter"),
    *route("settings/ip-filter/bans", settings_views.IpBanApi.as_view(), "api-settings-ip-bans"),
    *route("sessions", session_views.SessionListApi.as_view(), "api-sessions"),
]
