"""Authenticating code inside a sandbox by its run token (`Authorization: Bearer ozr_...`).

Run tokens work only on the agent API (MCP and /api/v1/agent/); the human API does not
accept them, and these doors do not accept a human's token or session.

Throttled as the human API is (apps.core.throttling): a refused token counts against the
caller's address (past OZWEB_THROTTLE_AUTH_FAILURES, any token from there, good or bad, is
answered 429), and each run's token may make OZWEB_THROTTLE_RUN calls, generous enough for a
chatty agent: it only stops one in a loop. A call costs one cache round trip for both.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.core.throttling import (
    Meter,
    Rate,
    auth_failed,
    auth_failures,
    rates_hit,
    request_address,
)
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


class TooManyRequests(Exception):
    """Over a rate: 429, with `retry_after` seconds for Retry-After."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        self.message = str(Throttled(retry_after).detail)  # the human API's words
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def run_for_authorization(authorization: str, *, address: str | None) -> Run:
    """The active run whose token the header carries, for a caller at `address`; raises
    TokenRefused (401) or TooManyRequests (429) otherwise."""
    token = bearer_token(authorization)
    if token is None:
        raise TokenRefused(MISSING_TOKEN, code="not_authenticated")
    run = run_for_token(token)
    if run is None:
        wait = auth_failed(address)
        if wait is not None:
            raise TooManyRequests(wait)
        raise TokenRefused(REFUSED_TOKEN, code="invalid_token")
    # One cache round trip for a good call: its run's count, and its address's refusals.
    calls = Meter("run", str(run.pk), Rate.parse(settings.OZWEB_THROTTLE_RUN))
    wait = rates_hit([calls], peeks=[auth_failures(address)])
    if wait is not None:
        raise TooManyRequests(wait)
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
            run = run_for_authorization(header, address=request_address(request._request))
        except TokenRefused as exc:
            raise AuthenticationFailed(exc.message, code=exc.code) from None
        except TooManyRequests as exc:
            raise Throttled(exc.retry_after) from None
        return AnonymousUser(), run

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


class HasRunToken(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, Run)
