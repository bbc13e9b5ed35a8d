"""Routes of provider connections (the `<id:...>` converter is registered by the site urls)."""

from gateway.api.base import route

from . import views

urlpatterns = [
    *route("providers", views.ConnectionListApi.as_view(), "api-providers"),
    *route("providers/validate", views.ProviderValidateApi.as_view(), "api-provider-validate"),
    *route("providers/<id:connection_id>", views.ConnectionDetailApi.as_view(), "api-provider-detail"),
    *route("providers/<id:connection_id>/test", views.ConnectionTestApi.as_view(), "api-provider-test"),
    *route("providers/<id:connection_id>/models", views.ConnectionModelsApi.as_view(), "api-provider-models"),
]
