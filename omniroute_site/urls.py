"""Wiring only: the admin, the management API under /api/, and /metrics (Prometheus), / → the admin for now.

The data plane (/v1, /v1beta, /api/tags) is routed before Django, in asgi.py.
"""

from django.contrib import admin
from django.urls import include, path, re_path, register_converter
from django.views.generic import RedirectView

from gateway.api.base import IdConverter
from gateway.api.views import api_not_found
from usage.api.views import MetricsApi

register_converter(IdConverter, "id")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("gateway.api.urls")),
    path("api/", include("providers.api.urls")),
    path("api/", include("usage.api.urls")),
    re_path(r"^api/", api_not_found),
    path("metrics", MetricsApi.as_view(), name="metrics"),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
