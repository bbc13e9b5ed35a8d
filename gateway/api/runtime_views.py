"""Runtime routing endpoints: resilience reset, model availability, rate-limit state, combo
tests. The work is in gateway/runtime.py; these views only parse and answer."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from gateway import runtime

from .base import ApiView
from .fields import StrictBooleanField, StrictCharField, StrictSerializer


class AvailabilityInput(StrictSerializer):
    model = StrictCharField(max_length=300)
    provider = StrictCharField(max_length=100, required=False, allow_blank=True)
    clear = StrictBooleanField(required=False, default=False)


class ComboTestInput(StrictSerializer):
    comboName = StrictCharField(source="combo_name", max_length=100)


class ResilienceResetApi(ApiView):
    def post(self, request: Request) -> Response:
        return Response(runtime.resilience_reset())


class ModelAvailabilityApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response(runtime.availability_list())

    def post(self, request: Request) -> Response:
        data = AvailabilityInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        return Response(
            runtime.model_availability(
                model=values["model"].strip(),
                provider=(values.get("provider") or "").strip() or None,
                clear=values["clear"],
            )
        )


class RateLimitsApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response(runtime.rate_limits())


class ComboTestApi(ApiView):
    def post(self, request: Request) -> Response:
        data = ComboTestInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(runtime.combo_test(combo_name=data.validated_data["combo_name"]))
