"""Routes of the usage app's management API (the `<id:...>` converter is registered by the site urls)."""

from gateway.api.base import route

from . import views

urlpatterns = [
    *route("pricing", views.PricingApi.as_view(), "api-pricing"),
    *route("usage/budget", views.BudgetApi.as_view(), "api-usage-budget"),
    *route("usage/history", views.UsageHistoryApi.as_view(), "api-usage-history"),
    *route("usage/logs", views.UsageLogsApi.as_view(), "api-usage-logs"),
    *route("usage/request-logs", views.RequestLogsApi.as_view(), "api-usage-request-logs"),
    *route("usage/<id:connection_id>", views.ConnectionUsageApi.as_view(), "api-usage-connection"),
    *route("compliance/audit-log", views.AuditLogApi.as_view(), "api-audit-log"),
    *route("telemetry/summary", views.TelemetrySummaryApi.as_view(), "api-telemetry-summary"),
]
