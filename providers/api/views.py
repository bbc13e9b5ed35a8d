"""Management endpoints of provider connections."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.api.base import ApiView
from providers import selectors, services

from .serializers import ConnectionInput, ConnectionOutput, ValidateInput, probe_body


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
