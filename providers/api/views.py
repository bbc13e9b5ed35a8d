"""Management endpoints of providers: connections, custom nodes, custom models, the catalog."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.api.base import ApiView
from gateway.api.errors import InvalidInput
from gateway.api.views import query_param
from providers import selectors, services
from providers.catalog import MODEL_TYPES

from .serializers import (
    ConnectionInput,
    ConnectionOutput,
    NodeInput,
    NodeOutput,
    ProviderModelInput,
    ProviderModelOutput,
    ValidateInput,
    catalog_body,
    probe_body,
)


class ConnectionListApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response({"connections": ConnectionOutput(selectors.connection_list(), many=True).data})

    def post(self, request: Request) -> Response:
        data = ConnectionInput(data=request.data)
        data.is_valid(raise_exception=True)
        connection = services.connection_create(**data.validated_data)
        return Response({"connection": ConnectionOutput(connection).data}, status=status.HTTP_201_CREATED)


class ConnectionDetailApi(ApiView):
    def get(self, request: Request, connection_id: int) -> Response:
        connection = selectors.connection_get(connection_id=connection_id)
        return Response({"connection": ConnectionOutput(connection).data})

    def put(self, request: Request, connection_id: int) -> Response:
        connection = selectors.connection_get(connection_id=connection_id)
        data = ConnectionInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        connection = services.connection_update(connection=connection, data=data.validated_data)
        return Response({"connection": ConnectionOutput(connection).data})

    patch = put

    def delete(self, request: Request, connection_id: int) -> Response:
        services.connection_delete(connection=selectors.connection_get(connection_id=connection_id))
        return Response({"message": "Connection deleted"})


class ConnectionTestApi(ApiView):
    def post(self, request: Request, connection_id: int) -> Response:
        connection = selectors.connection_get(connection_id=connection_id)
        return Response(probe_body(services.connection_test(connection=connection)))


class ConnectionModelsApi(ApiView):
    def get(self, request: Request, connection_id: int) -> Response:
        connection = selectors.connection_get(connection_id=connection_id)
        return Response({"models": selectors.connection_model_list(connection=connection)})


class ProviderValidateApi(ApiView):
    def post(self, request: Request) -> Response:
        data = ValidateInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.provider_validate(**data.validated_data)
        body: dict[str, object] = {"valid": result.valid}
        if not result.valid:
            body["error"] = result.error
        return Response(body)


class NodeListApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response({"nodes": NodeOutput(selectors.node_list(), many=True).data})

    def post(self, request: Request) -> Response:
        data = NodeInput(data=request.data)
        data.is_valid(raise_exception=True)
        node = services.node_create(**data.validated_data)
        return Response({"node": NodeOutput(node).data}, status=status.HTTP_201_CREATED)


class NodeDetailApi(ApiView):
    def get(self, request: Request, node_id: int) -> Response:
        return Response({"node": NodeOutput(selectors.node_get(node_id=node_id)).data})

    def put(self, request: Request, node_id: int) -> Response:
        node = selectors.node_get(node_id=node_id)
        data = NodeInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        node = services.node_update(node=node, data=data.validated_data)
        return Response({"node": NodeOutput(node).data})

    patch = put

    def delete(self, request: Request, node_id: int) -> Response:
        services.node_delete(node=selectors.node_get(node_id=node_id))
        return Response({"message": "Node deleted"})


class ProviderModelApi(ApiView):
    def get(self, request: Request) -> Response:
        provider = request.query_params.get("provider")
        rows = selectors.provider_model_list(provider=provider.strip() if provider else None)
        return Response({"models": ProviderModelOutput(rows, many=True).data})

    def post(self, request: Request) -> Response:
        data = ProviderModelInput(data=request.data)
        data.is_valid(raise_exception=True)
        row, created = services.provider_model_set(**data.validated_data)
        body = {"model": ProviderModelOutput(row).data}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    put = post

    def delete(self, request: Request) -> Response:
        row = selectors.provider_model_get(
            provider=query_param(request, "provider"), model_id=query_param(request, "model")
        )
        services.provider_model_delete(row=row)
        return Response({"success": True})


class CatalogApi(ApiView):
    def get(self, request: Request) -> Response:
        model_type = request.query_params.get("type") or None
        if model_type is not None and model_type not in MODEL_TYPES:
            raise InvalidInput(f"type must be one of {', '.join(sorted(MODEL_TYPES))}", field="type")
        return Response(catalog_body(selectors.catalog_current(), model_type=model_type))
