"""Websocket middleware: origin check, then session-cookie or `?token=` authentication, then
the caps on open connections per user and per address."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from apps.core.throttling import auth_failed, auth_refused_wait, scope_address

if TYPE_CHECKING:
    # types-channels' name for the scope of a websocket connection.
    from channels.consumer import _ChannelScope as ChannelScope

# An application close code (4000-4999) in the HTTP status's spirit, as 4401 and 4404 are.
CLOSE_TOO_MANY = 4429
DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: Any, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(receive: Any, send: Any, code: int) -> None:
    """Accept the handshake, then close with `code`: the client gets the reason, which a
    refused handshake (a bare 403) cannot carry."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code})


# -- the origin check ------------------------------------------------------------------------


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) origin, the port filled in; None if it is not one."""
    try:
        parsed = urlsplit(origin)
        port = parsed.port
    except ValueError:
        return None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.hostname:
        return None
    if parsed.path or parsed.query or parsed.fragment or parsed.username is not None:
        return None
    return parsed.scheme, parsed.hostname, port or DEFAULT_PORTS[parsed.scheme]


def _host_allowed(host: str) -> bool:
    """Whether a Host header names one of ALLOWED_HOSTS, as Django's request.get_host checks."""
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _trusted(origin: str, parts: tuple[str, str, int]) -> bool:
    """Whether CSRF_TRUSTED_ORIGINS lists the origin: exactly (the default port written or
    not), or as `scheme://*.domain` for its subdomains, as Django's CSRF check reads them."""
    netloc = urlsplit(origin).netloc.lower()
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "://*" in entry:
            scheme, _, pattern = entry.partition("://")
            if scheme == parts[0] and is_same_domain(netloc, pattern.removeprefix("*")):
                return True
        elif _origin_parts(entry) == parts:
            return True
    return False


def origin_allowed(origin: str | None, *, host: str | None, secure: bool) -> bool:
    """Whether a websocket handshake with this `Origin` may go on, for a request with this
    `Host` header over TLS (`secure`) or not.

    A browser always sends Origin, and it must be the page's own: scheme, host and port equal
    to the request's own (https when `secure`, its Host, which must be one of ALLOWED_HOSTS)
    or listed in CSRF_TRUSTED_ORIGINS. Clients that are not browsers (scripts, agents) send
    none. They cannot be driven by a foreign page, so they are let through and must
    authenticate like anyone else.
    """
    if origin is None:
        return True
    parts = _origin_parts(origin)
    if parts is None:
        return False
    if host and _host_allowed(host):
        own = _origin_parts(f"{'https' if secure else 'http'}://{host}")
        if own == parts:
            return True
    return _trusted(origin, parts)


def _request_host(scope: Any) -> str | None:
    if settings.USE_X_FORWARDED_HOST:
        forwarded = _header(scope, b"x-forwarded-host")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return _header(scope, b"host")


def _secure(scope: Any) -> bool:
    """Whether the connection came over TLS, as Django's request.is_secure tells it
    (SECURE_PROXY_SSL_HEADER, when set and sent, over the server's own scheme)."""
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        meta_name, secure_value = proxy_header
        name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
        value = _header(scope, name)
        if value is not None:
            return bool(value.split(",", 1)[0].strip() == secure_value)
    return scope.get("scheme") in {"wss", "https"}


class OriginCheckMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: ChannelScope, receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        if not origin_allowed(origin, host=_request_host(scope), secure=_secure(scope)):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.app(scope, receive, send)


# -- authentication --------------------------------------------------------------------------


@database_sync_to_async
def _user_for_token(key: str, address: str | None) -> tuple[Any, int | None]:
    """The token's user (AnonymousUser for a refused token), and the seconds `address` must
    wait if it is throttled: refused tokens count against their address as on the REST API."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser(), auth_failed(address)
    return token.user, auth_refused_wait(address)


class TokenQueryAuthMiddleware:
    """`?token=<key>` authenticates API clients; it wins over any session cookie."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode())
        key = (query.get("token") or [""])[0]
        if key:
            address = scope_address(scope.get("client"), scope.get("headers", []))
            user, wait = await _user_for_token(key, address)
            if wait is not None:
                return await _refuse(receive, send, CLOSE_TOO_MANY)
            scope = dict(scope, user=user)
        return await self.app(scope, receive, send)


def authenticated_user(scope: ChannelScope) -> User | None:
    """The signed-in user of a connection that came through `websocket_stack`, or None."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return None
    # AUTH_USER_MODEL is the default; AuthMiddleware's lazy user passes isinstance too.
    assert isinstance(user, User)
    return user


# -- caps on open connections ----------------------------------------------------------------


class ConnectionCapMiddleware:
    """At most OZWEB_WS_MAX_PER_USER open websockets per signed-in user, and
    OZWEB_WS_MAX_PER_ADDRESS per client address; one more is accepted and closed at once with
    4429. Each server process counts its own connections (so N processes allow N times the
    cap in all): a connection is counted while its application runs, which ends when the
    socket closes, however it closes."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.open: Counter[str] = Counter()

    def _limits(self, scope: Any) -> list[tuple[str, int]]:
        limits = []
        user = authenticated_user(scope)
        if user is not None:
            limits.append((f"user:{user.pk}", settings.OZWEB_WS_MAX_PER_USER))
        address = scope_address(scope.get("client"), scope.get("headers", []))
        if address is not None:
            limits.append((f"address:{address}", settings.OZWEB_WS_MAX_PER_ADDRESS))
        return limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        limits = self._limits(scope)
        if any(self.open[key] >= limit for key, limit in limits):
            return await _refuse(receive, send, CLOSE_TOO_MANY)
        for key, _ in limits:
            self.open[key] += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            for key, _ in limits:
                self.open[key] -= 1
                if self.open[key] <= 0:
                    del self.open[key]


def websocket_stack(inner: Any) -> Any:
    return OriginCheckMiddleware(
        AuthMiddlewareStack(TokenQueryAuthMiddleware(ConnectionCapMiddleware(inner)))
    )
