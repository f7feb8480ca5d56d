"""What the resource views share: validated input, whole-number query parameters, pages."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ServiceError

MAX_PAGE = 200


class AuthenticatedRequest(Request):
    """The request of every resource view: IsAuthenticated (the default permission) lets no
    AnonymousUser through."""

    user: User


def paginate(
    request: Request, view: APIView, queryset: Any, serializer: Any, **ctx: Any
) -> Response:
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=ctx).data)


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def int_param(
    request: Request, name: str, *, default: int, low: int, high: int | None = None
) -> int:
    raw = request.query_params.get(name)
    if not raw:  # absent or empty
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(f"{name} must be a whole number.", field=name) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ServiceError(f"{name} must be {bounds}.", field=name)
    return value
