"""Strict JSON fields and a strict serializer base for the management API.

DRF's stock fields coerce (`123` → `"123"`, `"yes"` → `True`, `"5"` → `5`); a management
API that silently reinterprets a typo is harder to use than one that says what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number (integer or not); never a string or a boolean, never NaN or infinity."""

    default_error_messages = {"invalid": "Must be a number."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class StrictSerializer(serializers.Serializer):
    """Rejects unknown fields. Names in `ignored_fields` (read-only output fields a client may
    echo back after a GET) are dropped silently."""

    ignored_fields: frozenset[str] = frozenset()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - self.ignored_fields)
            if unknown:
                raise serializers.ValidationError({name: [self._unknown_message(name)] for name in unknown})
        return super().to_internal_value(data)

    def _unknown_message(self, name: str) -> str:
        camel = to_camel(name)
        return f"Unknown field; did you mean {camel!r}?" if camel in self.fields else "Unknown field."
