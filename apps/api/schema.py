"""The OpenAPI schema's shared parts: every operation documents the errors it can answer.

Errors are `{"detail", "code", "field"?, "errors"?}` (apps.api.errors, and the agent door's
apps.agentapi.rest); which statuses an operation can answer follows from what it takes.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from rest_framework import serializers

from apps.api.views.common import Page
from apps.core.patterns import NOT_BLANK

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ErrorOutput(serializers.Serializer):
    class Meta:
        ref_name = "Error"

    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")
    field = serializers.CharField(required=False, help_text="The input at fault, if one is.")
    # DRF pops declared fields off the class, so `errors` shadows no Serializer attribute.
    errors = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="Every input at fault, with its messages."
    )


ERROR_DESCRIPTIONS = {
    400: "The input is not valid.",
    401: "No credentials, or credentials that are not (or no longer) valid.",
    403: "The caller's role does not allow it.",
    404: "No such object, or not one the caller may see.",
    409: "The object's state refuses it (a name taken, an archived agent, ...).",
    413: "The request body is too large.",
    415: "The body is not of a media type the operation takes.",
    429: "Too many requests; try again after `Retry-After` seconds.",
}


def error_statuses(
    operation: dict[str, Any], *, method: str, path: str, any_content_type: bool = False
) -> list[int]:
    """The error statuses an operation can answer, from what it takes. `any_content_type`: its
    view parses every body alike (no 415)."""
    has_body = "requestBody" in operation
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    statuses = [429]
    if has_body or has_query or method == "POST":
        statuses.append(400)
    if operation.get("security"):
        statuses.append(401)
    if method in UNSAFE_METHODS:
        statuses += [403, 409]
    # A required query parameter names a row too (GET /changes/?team=): another team's is a 404.
    names_a_row = any(
        p.get("in") == "query" and p.get("required") for p in operation.get("parameters", [])
    )
    if "{" in path or has_body or names_a_row:
        statuses.append(404)
    if has_body:
        statuses.append(413)
        if not any_content_type:
            statuses.append(415)
    return sorted(statuses)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with the error responses every view can give."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses: dict[str, Any] = operation["responses"]
        any_content_type = getattr(self.view, "any_content_type", False)
        statuses = error_statuses(
            operation, method=self.method, path=self.path, any_content_type=any_content_type
        )
        for status in statuses:
            if str(status) not in responses:
                responses[str(status)] = self._error_response(status)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _map_serializer_field(
        self, field: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF refuses a blank string (one of only whitespace, when it trims) for a CharField
        # that does not allow_blank; drf-spectacular does not say so.
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.allow_blank
            and schema.get("type") == "string"
            and "pattern" not in schema
        ):
            if field.trim_whitespace:
                schema["pattern"] = NOT_BLANK
            else:
                schema["minLength"] = max(schema.get("minLength", 0), 1)
        # A decimal's input is a JSON number (apps.core.json_types), not the string that
        # drf-spectacular documents; and DRF refuses more digits than the field holds.
        if (
            direction == "request"
            and isinstance(field, serializers.DecimalField)
            and field.max_digits is not None
            and field.decimal_places is not None
        ):
            nullable = isinstance(schema.get("type"), list) and "null" in schema["type"]
            schema.pop("pattern", None)
            schema.pop("format", None)
            schema["type"] = ["number", "null"] if nullable else "number"
            schema["multipleOf"] = float(f"1e-{field.decimal_places}")
            limit = 10 ** (field.max_digits - field.decimal_places)
            schema["exclusiveMaximum"] = limit
            schema.setdefault(
                "minimum" if field.min_value is not None else "exclusiveMinimum",
                field.min_value if field.min_value is not None else -limit,
            )
        return schema

    def _get_paginator(self) -> Any:
        """Every list a view answers is a Page (apps.api.views.common.paginate), unless the
        view says `pagination_class = None`."""
        return getattr(self.view, "pagination_class", Page) and Page()

    def _error_response(self, status: int) -> dict[str, Any]:
        response: dict[str, Any] = {
            "content": {
                "application/json": {"schema": self.resolve_serializer(ErrorOutput, "response").ref}
            },
            "description": ERROR_DESCRIPTIONS[status],
        }
        if status == 429:
            response["headers"] = {
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Seconds to wait before trying again.",
                }
            }
        return response
