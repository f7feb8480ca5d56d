"""Input from JSON takes only the JSON type its field documents.

DRF's fields coerce (a CharField takes 5 as "5", an IntegerField "5", a BooleanField "yes"
and 1), so a body the OpenAPI schema calls invalid would be accepted. The doors check the
types first (`json_typed`), then let the serializer validate as usual. A number with no
fraction is an integer, however it is written (JSON Schema: 5.0 is 5). Multipart and form
bodies (QueryDicts: every value a string) are left to the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

# (field class, the Python types of the JSON values it takes, what to call them)
_TYPES: list[tuple[type[serializers.Field], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.DecimalField, (int, float), "a number"),
    (serializers.CharField, (str,), "a string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
    (serializers.ListField, (list,), "an array"),
    (serializers.ListSerializer, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.Serializer, (dict,), "an object"),
]


class _Refused(Exception):
    def __init__(self, errors: Any) -> None:
        self.errors = errors


def integral(value: Any) -> Any:
    """An integral float as the int it is (JSON does not tell 5.0 from 5); else `value`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _typed(field: serializers.Field, value: Any) -> Any:
    """`value` for `field`, its integers as ints; _Refused (nested errors) if of another type."""
    if value is None:
        return None  # the field's allow_null decides
    if isinstance(field, serializers.IntegerField):
        value = integral(value)
    for field_class, types, name in _TYPES:
        if isinstance(field, field_class):
            if isinstance(value, bool) and bool not in types or not isinstance(value, types):
                raise _Refused([f"Must be {name}."])
            break
    child = getattr(field, "child", None)
    if isinstance(field, serializers.ListField | serializers.ListSerializer) and child:
        return _each(child, dict(enumerate(value)), list)
    if isinstance(field, serializers.DictField) and child:
        return _each(child, value, dict)
    if isinstance(field, serializers.Serializer):
        return json_typed(field.fields, value)
    return value


def _each(child: serializers.Field, values: dict[Any, Any], kind: type) -> Any:
    typed, errors = {}, {}
    for key, item in values.items():
        try:
            typed[key] = _typed(child, item)
        except _Refused as exc:
            errors[key] = exc.errors
    if errors:
        raise _Refused(errors)
    return list(typed.values()) if kind is list else typed


def json_typed(fields: Mapping[str, serializers.Field], data: Any) -> Any:
    """`data` (a JSON object) with each input of its field's JSON type, integers as ints; a
    ValidationError naming those of another type."""
    if not isinstance(data, Mapping) or isinstance(data, QueryDict):
        return data
    typed, errors = dict(data), {}
    for name, field in fields.items():
        if field.read_only or name not in data:
            continue
        try:
            typed[name] = _typed(field, data[name])
        except _Refused as exc:
            errors[name] = exc.errors
    if errors:
        raise serializers.ValidationError(errors)
    return typed


# A Serializer that takes from JSON only the types its fields document (json_typed). (A
# comment, not a docstring: the OpenAPI schema would show it for every subclass.)
class StrictSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value(json_typed(self.fields, data))
