"""Errors that services raise. Views, the API and consumers turn them into responses.

NotFound and PermissionDenied are also Django's Http404 and PermissionDenied, so an HTML view
lets them rise to the 404 and 403 pages (the API's exception handler answers them as JSON).
"""

from __future__ import annotations

from django.core import exceptions as django_exceptions
from django.http import Http404


class ServiceError(Exception):
    """A request the domain refuses. `field` names the input at fault, when there is one."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NotFound(ServiceError, Http404):
    """The object does not exist, or the actor may not see it (never tell which)."""

    status_code = 404

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, code="not_found")


class PermissionDenied(ServiceError, django_exceptions.PermissionDenied):
    status_code = 403

    def __init__(self, message: str = "You do not have permission to do that.") -> None:
        super().__init__(message, code="permission_denied")


class Conflict(ServiceError):
    """The row's state refuses the request (e.g. the agent is archived)."""

    status_code = 409
