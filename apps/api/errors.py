"""Every error of the REST API is `{"detail", "code", "field"?, "errors"?}`: service errors,
DRF's own (validation, authentication, throttling, ...), a body over the size limit, and a
path under /api/ that names nothing."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ServiceError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["field"] = exc.field
            body["errors"] = {exc.field: [exc.message]}
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "The request body is too large.", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    response = drf_exception_handler(exc, context)  # headers (WWW-Authenticate, Retry-After)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = _api_exception_body(exc)
    return response


def _api_exception_body(exc: exceptions.APIException) -> dict[str, Any]:
    if not isinstance(exc.detail, dict | list):
        return {"detail": str(exc.detail), "code": getattr(exc.detail, "code", None) or "error"}
    # A validation error: the first input at fault and its first message, and all of them.
    errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    name, messages = next(iter(errors.items()), ("non_field_errors", []))
    message = _first_message(messages)
    body: dict[str, Any] = {
        "detail": f"{name}: {message}" if name != "non_field_errors" else str(message),
        "code": getattr(message, "code", None) or "invalid",
    }
    if name != "non_field_errors":
        body["field"] = name
    body["errors"] = errors
    return body


def _first_message(messages: Any) -> Any:
    """The first message of a field's errors (nested for lists and objects of values)."""
    while isinstance(messages, dict | list) and messages:
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return messages if messages else "Invalid input."


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path under /api/ that matches no endpoint (or an id out of range) gets
    the API's JSON 404; the HTML pages keep Django's."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)
