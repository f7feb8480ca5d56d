"""The REST API's token authentication: DRF's, with refused tokens counted per address.

DRF's throttles run after authentication, so a request with a bad token never reaches them;
the count is kept here instead (apps.core.throttling). Once an address has used up
OZWEB_THROTTLE_AUTH_FAILURES, every token it presents, good or bad, gets 429 with Retry-After
until the window ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.core.throttling import auth_failed, auth_refused_wait, request_address

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request: Request) -> tuple[User, Token] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # no token: another authentication's turn
        address = request_address(request._request)
        try:
            authenticated = super().authenticate(request)
        except exceptions.AuthenticationFailed:
            wait = auth_failed(address)
            if wait is not None:
                raise exceptions.Throttled(wait) from None
            raise
        wait = auth_refused_wait(address)
        if wait is not None:
            raise exceptions.Throttled(wait)
        return authenticated
