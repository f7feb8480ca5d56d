"""The agent doors (REST verbs, MCP) answer in front of Django for speed, but with Django's
security behaviour: its own code runs around every answer.

Before a door answers, the request is built by Django's ASGI handler and put through the
request side of settings.MIDDLEWARE (`process_request`, URL resolution and `process_view`, as
Django's handler does). If any of them would answer or raise (a Host not in ALLOWED_HOSTS, a
redirect to HTTPS, a refused user agent, ...), the door does not answer: it hands the request
to Django, which answers it exactly as it answers any other (status, body, headers, logging).
Otherwise the door's answer, a real HttpResponse, goes through the response side
(`process_response` in reverse order: the security headers, X-Frame-Options, Content-Length,
...), is logged by `django.utils.log.log_response` as Django logs 4xx and 5xx, and is sent by
Django's own ASGI `send_response`.

Not reproduced: the request_started/request_finished signals (the doors' threads keep their
database connection on purpose: apps.agentapi.pool) and ATOMIC_REQUESTS (each verb has its own
transactions). Middleware that is not hook-based cannot be replayed; it must be one whose work
never applies to a door's answer (IDLE_AT_THE_DOORS), or the doors refuse to start.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import ResolverMatch, get_urlconf
from django.utils.log import log_response
from django.utils.module_loading import import_string

# Middleware without hooks whose work never applies to a door's answer, so what Django would do
# with it changes nothing here: django-htmx only annotates the request (nothing the doors
# read); axes only turns a login refused for a lockout (by a view's authenticate()) into its
# 429, and the doors log no one in.
IDLE_AT_THE_DOORS = frozenset(
    {"django_htmx.middleware.HtmxMiddleware", "axes.middleware.AxesMiddleware"}
)


RESOLVED_PATHS = 256  # paths whose resolution a door keeps (its verbs: the rest are 404s)


def _never_called(request: HttpRequest) -> HttpResponseBase:
    raise AssertionError("the doors call middleware hooks, not the middleware chain")


class DjangoParity:
    """settings.MIDDLEWARE's hooks, Django's ASGI handler and its logging, for a door."""

    def __init__(self) -> None:
        # Not Django's app (which may be wrapped): a handler of our own for its public helpers
        # (create_request, resolve_request, send_response).
        self._handler = ASGIHandler()
        self._request_hooks: list[Callable[..., Any]] = []
        self._view_hooks: list[Callable[..., Any]] = []
        self._response_hooks: list[Callable[..., Any]] = []
        self._resolved: dict[tuple[str, str], ResolverMatch] = {}
        for path in settings.MIDDLEWARE:
            try:
                middleware = import_string(path)(_never_called)
            except MiddlewareNotUsed:
                continue
            hooks = [
                getattr(middleware, name, None)
                for name in ("process_request", "process_view", "process_response")
            ]
            if not any(hooks) and path not in IDLE_AT_THE_DOORS:
                raise ImproperlyConfigured(
                    f"{path} has no middleware hooks, so the agent doors (apps.agentapi.parity) "
                    "cannot do what it does; list it in IDLE_AT_THE_DOORS if its work never "
                    "applies to their answers."
                )
            request_hook, view_hook, response_hook = hooks
            if request_hook:
                self._request_hooks.append(request_hook)
            if view_hook:
                self._view_hooks.append(view_hook)
            if response_hook:
                self._response_hooks.insert(0, response_hook)

    def request(
        self, scope: Mapping[str, Any], body: bytes = b"", *, resolve: bool = True
    ) -> HttpRequest | None:
        """The request as Django's handler builds it, through the request-side middleware and
        (with `resolve`) to the view Django would call; None if Django would answer it itself
        before any view: then Django must be given the request."""
        request, _ = self._handler.create_request(scope, io.BytesIO(body))
        if request is None:
            return None
        try:
            for hook in self._request_hooks:
                if hook(request) is not None:
                    return None
            if resolve:
                view, args, kwargs = self._resolve(request)
                for hook in self._view_hooks:
                    if hook(request, view, args, kwargs) is not None:
                        return None
        except Exception:  # noqa: BLE001 -- Django turns it into its answer (400, 403, 404...)
            return None
        return request

    def _resolve(self, request: HttpRequest) -> ResolverMatch:
        """Django's resolve_request, remembered per path: the doors serve a handful of paths,
        and resolving one through the URLconf cost ~0.1 ms per call. Not for a request whose
        middleware chose a URLconf of its own."""
        if hasattr(request, "urlconf"):
            return self._handler.resolve_request(request)
        key = (get_urlconf() or settings.ROOT_URLCONF, request.path_info)
        match = self._resolved.get(key)
        if match is None:
            match = self._handler.resolve_request(request)
            if len(self._resolved) < RESOLVED_PATHS:
                self._resolved[key] = match
        request.resolver_match = match
        return match

    def response(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        *,
        exception: BaseException | None = None,
    ) -> HttpResponseBase:
        """`response` as Django's middleware hands it on, logged as Django logs a 4xx or 5xx
        (`exception`: what made it a 500)."""
        for hook in self._response_hooks:
            response = hook(request, response)
        if response.status_code >= 400:
            log_response(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,  # type: ignore[arg-type]  # any response (the stubs: not)
                request=request,
                exception=exception,
            )
        return response

    async def send(
        self, response: HttpResponseBase, send: Callable[[Mapping[str, Any]], Awaitable[None]]
    ) -> None:
        """Send `response` over ASGI as Django's handler does."""
        await self._handler.send_response(response, send)

    async def start_message(
        self, request: HttpRequest, status: int, headers: list[tuple[bytes, bytes]]
    ) -> dict[str, Any]:
        """For a response whose body is not Django's to send (the MCP SDK's): the
        `http.response.start` message Django would send for this status and these headers,
        once through the response-side middleware (and logged)."""
        sdk_response = StreamingHttpResponse(_no_content(), status=status)
        del sdk_response["Content-Type"]  # Django's default; the SDK's own, if any, comes next
        for name, value in headers:
            sdk_response[name.decode("latin-1")] = value.decode("latin-1")
        response = self.response(request, sdk_response)
        sent: list[Mapping[str, Any]] = []

        async def keep(message: Mapping[str, Any]) -> None:
            sent.append(message)

        await self._handler.send_response(response, keep)
        return dict(sent[0])


async def _no_content() -> AsyncIterator[bytes]:
    return
    yield
