"""Routes of providers: connections, custom nodes and models, the catalog.

The `<id:...>` converter is registered by the site urls.
"""

from gateway.api.base import route

from . import views

urlpatterns = [
    *route("providers", views.ConnectionListApi.as_view(), "api-providers"),
    *route("providers/validate", views.ProviderValidateApi.as_view(), "api-provider-validate"),
    *route("providers/<id:connection_id>", views.ConnectionDetailApi.as_view(), "api-provider-detail"),
    *route("providers/<id:connection_id>/test", views.ConnectionTestApi.as_view(), "api-provider-test"),
    *route("providers/<id:connection_id>/models", views.ConnectionModelsApi.as_view(), "api-provider-models"),
    *route("provider-nodes", views.NodeListApi.as_view(), "api-provider-nodes"),
    *route("provider-nodes/<id:node_id>", views.NodeDetailApi.as_view(), "api-provider-node-detail"),
    *route("provider-models", views.ProviderModelApi.as_view(), "api-custom-models"),
    *route("models/catalog", views.CatalogApi.as_view(), "api-model-catalog"),
]
