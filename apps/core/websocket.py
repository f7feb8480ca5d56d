"""Websocket middleware: origin check, then session-cookie or `?token=` authentication."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http.request import split_domain_port
from django.utils.http import is_same_domain

if TYPE_CHECKING:
    # types-channels' name for the scope of a websocket connection.
    from channels.consumer import _ChannelScope as ChannelScope


def origin_allowed(origin: str | None) -> bool:
    """A browser always sends Origin; it must name one of our hosts.

    Clients that are not browsers (scripts, agents) send none. They cannot be driven by a
    foreign page, so they are let through and must authenticate like anyone else.
    """
    if origin is None:
        return True
    parsed = urlparse(origin)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        return False
    host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
    if f"{parsed.scheme}://{parsed.netloc}" in settings.CSRF_TRUSTED_ORIGINS:
        return True
    if "*" in settings.ALLOWED_HOSTS:
        return True
    domain, _port = split_domain_port(host)
    return any(is_same_domain(domain or host, pattern) for pattern in settings.ALLOWED_HOSTS)


class OriginCheckMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: ChannelScope, receive: Any, send: Any) -> Any:
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin1")
        if not origin_allowed(origin):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.app(scope, receive, send)


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


class TokenQueryAuthMiddleware:
    """`?token=<key>` authenticates API clients; it wins over any session cookie."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode())
        key = (query.get("token") or [""])[0]
        if key:
            scope = dict(scope, user=await _user_for_token(key))
        return await self.app(scope, receive, send)


def authenticated_user(scope: ChannelScope) -> User | None:
    """The signed-in user of a connection that came through `websocket_stack`, or None."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None
    # AUTH_USER_MODEL is the default; AuthMiddleware's lazy user passes isinstance too.
    assert isinstance(user, User)
    return user


def websocket_stack(inner: Any) -> Any:
    return OriginCheckMiddleware(AuthMiddlewareStack(TokenQueryAuthMiddleware(inner)))
