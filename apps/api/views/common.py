"""What the resource views share: validated input, whole-number query parameters, pages."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ServiceError
from apps.core.ids import MAX_ID
from apps.core.json_types import json_typed

MAX_PAGE = 200


class AuthenticatedRequest(Request):
    """The request of every resource view: IsAuthenticated (the default permission) lets no
    AnonymousUser through."""

    user: User


class Page(LimitOffsetPagination):
    """`{"count", "next", "previous", "results"}` by `limit` (1–MAX_PAGE, 50) and `offset`;
    a limit or offset out of range is a 400 rather than quietly the default. The OpenAPI
    schema documents every list response as one (apps.api.schema)."""

    default_limit = 50
    max_limit = MAX_PAGE

    def get_limit(self, request: Request) -> int:
        return int_param(request, "limit", default=self.default_limit, low=1, high=MAX_PAGE)

    def get_offset(self, request: Request) -> int:
        return int_param(request, "offset", default=0, low=0, high=MAX_ID)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        page = super().get_paginated_response_schema(schema)
        for link in ("next", "previous"):  # OpenAPI 3.1: null is a type
            del page["properties"][link]["nullable"]
            page["properties"][link]["type"] = ["string", "null"]
        return page

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        bounds = {"limit": (1, MAX_PAGE), "offset": (0, MAX_ID)}
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"].update(minimum=low, maximum=high)
        return parameters


def paginate(
    request: Request, view: APIView, queryset: Any, serializer: Any, **ctx: Any
) -> Response:
    paginator = Page()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=ctx).data)


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    """`data` validated, each input of the JSON type the schema documents (not coerced)."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.initial_data = json_typed(serializer.fields, data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def int_param(request: Request, name: str, *, default: int, low: int, high: int = MAX_ID) -> int:
    """A whole-number query parameter from `low` to `high` (by default the largest the
    database holds: nothing larger reaches a query), or a 400 naming it."""
    raw = request.query_params.get(name)
    if not raw:  # absent or empty
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(f"{name} must be a whole number.", field=name) from None
    if not low <= value <= high:
        raise ServiceError(f"{name} must be between {low} and {high}.", field=name)
    return value


def id_param(request: Request, name: str) -> int | None:
    """An id query parameter (a filter): None when absent or empty, else 1 to MAX_ID or a 400."""
    raw = request.query_params.get(name)
    return int_param(request, name, default=0, low=1) if raw else None


def bool_param(request: Request, name: str, *, default: bool = False) -> bool:
    raw = (request.query_params.get(name) or "").lower()
    if not raw:  # absent or empty
        return default
    if raw not in {"true", "false", "1", "0"}:
        raise ServiceError(f"{name} must be true or false.", field=name)
    return raw in {"true", "1"}


def seq_window_parameters(*, rows: str, max_limit: int, default: int) -> list[OpenApiParameter]:
    """The `since`/`limit` query of an endpoint that pages by seq (a thread's messages, a run's
    events), as the schema documents it."""
    return [
        OpenApiParameter(
            "since",
            {"type": "integer", "minimum": 0, "maximum": MAX_ID},
            description=f"Only {rows} with a larger seq.",
        ),
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": max_limit},
            description=f"At most this many ({default} when not given).",
        ),
    ]
