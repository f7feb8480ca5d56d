"""Authenticating code inside a sandbox by its run token (`Authorization: Bearer ozr_...`).

Run tokens work only on the agent API (MCP and /api/v1/agent/); the human API does not
accept them, and these doors do not accept a human's token or session.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.runs.models import Run
from apps.runs.tokens import run_for_token

# Messages, not secrets.
MISSING_TOKEN = "Send the run token: Authorization: Bearer $OZWEB_TOKEN."  # noqa: S105
REFUSED_TOKEN = "The run token is unknown, or its run has ended."  # noqa: S105
WWW_AUTHENTICATE = 'Bearer realm="ozweb agents"'


class TokenRefused(Exception):
    """No usable run token; `code` is `not_authenticated` or `invalid_token`."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def run_for_authorization(authorization: str) -> Run:
    """The active run whose token the header carries; raises TokenRefused otherwise."""
    token = bearer_token(authorization)
    if token is None:
        raise TokenRefused(MISSING_TOKEN, code="not_authenticated")
    run = run_for_token(token)
    if run is None:
        raise TokenRefused(REFUSED_TOKEN, code="invalid_token")
    return run


class RunTokenAuthentication(BaseAuthentication):
    """DRF authentication for the agent endpoints: `request.auth` is the caller's Run.

    There is no human behind a run token, so `request.user` stays anonymous and the human
    API's `IsAuthenticated` never lets one through.
    """

    def authenticate(self, request: Request) -> tuple[object, Run] | None:
        header = get_authorization_header(request).decode("latin-1")
        if bearer_token(header) is None:
            return None  # NotAuthenticated (401) from HasRunToken
        try:
            run = run_for_authorization(header)
        except TokenRefused as exc:
            raise AuthenticationFailed(exc.message, code=exc.code) from None
        return AnonymousUser(), run

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class HasRunToken(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, Run)
