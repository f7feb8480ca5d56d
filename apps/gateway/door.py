"""The model gateway: `/gateway/<provider id>/<path>` forwarded to the provider's base URL.

A harness in a sandbox holds its run's token where its model key would be (x-api-key,
Authorization: Bearer, x-goog-api-key or ?key=). The gateway accepts it only while the run is
active and only for that run's provider, checks the budgets (apps.gateway.budgets), swaps in
the provider's real key, and streams the request upstream and the answer back unchanged with
one shared httpx client per event loop. The usage the provider reports in the answer is read
as it streams past (apps.gateway.metering) and recorded before the answer's last byte goes out,
so the run's next request is checked against it.

ASGI in front of Django (ozweb/asgi.py), as the agent doors are: a model request holds no
thread while it streams; the database work (token, provider, budgets, the record) runs on the
gateway's own threads, which keep their connection. Neither token nor key is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from django.conf import settings

from apps.core.db import connections_done
from apps.core.secretbox import token_hash
from apps.core.throttling import auth_failed
from apps.gateway.budgets import budget_check
from apps.gateway.metering import ANTHROPIC, GEMINI, Usage, UsageMeter
from apps.gateway.services import budget_stop, usage_record
from apps.providers.models import Provider
from apps.providers.selectors import provider_for_agent
from apps.providers.services import provider_api_key
from apps.runs.models import Run
from apps.runs.tokens import run_for_token

logger = logging.getLogger(__name__)

PATH_RE = re.compile(r"^/gateway/([0-9]{1,18})(/.*)?$")
GATEWAY_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="gateway")

# Credentials the harness sends (the run token) and headers that belong to one hop.
CREDENTIAL_HEADERS = {"x-api-key", "authorization", "x-goog-api-key"}
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
}
DROPPED_REQUEST_HEADERS = CREDENTIAL_HEADERS | HOP_HEADERS | {"accept-encoding", "cookie"}
DROPPED_RESPONSE_HEADERS = HOP_HEADERS | {"set-cookie"}
BUDGET_STATUS = 400  # every harness gives up on a 400 (HARNESSES.md §1.6, §2.6, §3.6, §4.5)


def _in_pool(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """`fn` as a coroutine function run on the gateway's threads, which keep their database
    connection (a plain executor hop: nothing of asgiref's thread-sensitivity is needed)."""

    def call(kwargs: dict[str, Any]) -> Any:
        try:
            return fn(**kwargs)
        finally:
            connections_done()

    async def run(**kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(GATEWAY_THREADS, call, kwargs)

    return run


def error_body(kind: str, status: int, message: str) -> bytes:
    """An error as the provider itself would answer it, so the harness reports `message`."""
    if kind == ANTHROPIC:
        error_type = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
        }.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    elif kind == GEMINI:
        gemini_status = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
        }.get(status, "UNAVAILABLE")
        body = {"error": {"code": status, "message": message, "status": gemini_status}}
    else:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error" if status < 500 else "server_error",
                "param": None,
                "code": "ozweb_gateway",
            }
        }
    return json.dumps(body).encode()


@dataclass(frozen=True)
class Refused:
    status: int
    message: str
    kind: str = ANTHROPIC
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True)
class Admitted:
    run: Run
    provider: Provider
    api_key: str


def run_token_of(headers: dict[str, str], query: list[tuple[str, str]]) -> str:
    """The run token, wherever the harness's SDK put its "API key"."""
    if value := headers.get("x-api-key"):
        return value.strip()
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if value := headers.get("x-goog-api-key"):
        return value.strip()
    for name, value in query:
        if name == "key":
            return value.strip()
    return ""


# Providers and which one an agent uses, as loaded a moment ago: a run sends many requests a
# minute, and each ORM query costs more than the rest of the check (bench/gateway.py). A
# changed or deleted provider takes effect within PROVIDER_CACHE_SECONDS; whether the run is
# still active is asked of the database on every request.
PROVIDER_CACHE_SECONDS = 5.0
_providers: dict[int, tuple[float, Provider | None, str]] = {}  # id → (at, row, key)
_agent_providers: dict[tuple[int, int | None], tuple[float, int | None]] = {}
_cache_lock = threading.Lock()


def _cached_provider(provider_id: int) -> tuple[Provider | None, str]:
    now = time.monotonic()
    with _cache_lock:
        hit = _providers.get(provider_id)
    if hit is not None and now - hit[0] < PROVIDER_CACHE_SECONDS:
        return hit[1], hit[2]
    provider = Provider.objects.filter(pk=provider_id).first()
    key = provider_api_key(provider) if provider is not None else ""
    with _cache_lock:
        if len(_providers) > 10_000:
            _providers.clear()
        _providers[provider_id] = (now, provider, key)
    return provider, key


def _agents_provider_id(run: Run) -> int | None:
    agent = run.agent
    cache_key = (agent.pk, agent.provider_id)
    now = time.monotonic()
    with _cache_lock:
        hit = _agent_providers.get(cache_key)
    if hit is not None and now - hit[0] < PROVIDER_CACHE_SECONDS:
        return hit[1]
    expected = provider_for_agent(agent=agent)
    provider_id = expected.pk if expected is not None else None
    with _cache_lock:
        if len(_agent_providers) > 10_000:
            _agent_providers.clear()
        _agent_providers[cache_key] = (now, provider_id)
    return provider_id


def admit(*, token: str, provider_id: int, address: str | None) -> Admitted | Refused:
    """Whether this run token may send this request to this provider now (sync, on a pool
    thread): the run is active, the provider is its provider, no budget is spent."""
    provider, api_key = _cached_provider(provider_id)
    kind = provider.kind if provider is not None else ANTHROPIC
    run = run_for_token(token) if token else None
    if run is None:
        wait = auth_failed(address)
        if wait is not None:
            return Refused(
                429, "Too many refused tokens; try again later.", kind,
                ((b"retry-after", str(wait).encode()),),
            )  # fmt: skip
        message = (
            "ozweb gateway: the run token is unknown, or its run has ended."
            if token
            else "ozweb gateway: send the run token ($OZWEB_TOKEN) as the API key."
        )
        return Refused(401, message, kind)
    if provider is None or provider.team_id != run.team_id:
        return Refused(404, f"ozweb gateway: there is no provider {provider_id}.", kind)
    if _agents_provider_id(run) != provider.pk:
        return Refused(
            404, f"ozweb gateway: provider {provider_id} is not this run's provider.", kind
        )
    spent = budget_check(run=run)
    if spent is not None:
        budget_stop(run=run, spent=spent)
        return Refused(BUDGET_STATUS, spent.message, kind)
    return Admitted(run=run, provider=provider, api_key=api_key)


def _record(
    *, run: Run, provider: Provider, path: str, status: int, usage: Usage, ttfb_ms: int | None,
    latency_ms: int,
) -> None:  # fmt: skip
    try:
        usage_record(
            run=run, provider=provider, path=path, status=status, usage=usage,
            ttfb_ms=ttfb_ms, latency_ms=latency_ms,
        )  # fmt: skip
    except Exception:
        # The answer has gone out already; losing its record must not break the stream.
        logger.exception("gateway: recording the usage of run %s failed", run.pk)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def upstream_client() -> httpx.AsyncClient:
    """This event loop's shared client (its connections belong to the loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.OZWEB_GATEWAY_CONNECT_TIMEOUT,
                read=settings.OZWEB_GATEWAY_READ_TIMEOUT,
                write=60.0,
                pool=30.0,
            ),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
            follow_redirects=False,
            trust_env=False,  # straight to the provider, whatever proxy the server's env names
        )
        _clients[loop] = client
    return client


def upstream_headers(
    raw: list[tuple[bytes, bytes]], *, provider: Provider, api_key: str
) -> list[tuple[str, str]]:
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if name.decode("latin-1").lower() not in DROPPED_REQUEST_HEADERS
    ]
    # Identity, so the usage can be read from the answer as it passes.
    headers.append(("accept-encoding", "identity"))
    if provider.kind == ANTHROPIC:
        headers.append(("x-api-key", api_key))
    elif provider.kind == GEMINI:
        headers.append(("x-goog-api-key", api_key))
    else:
        headers.append(("authorization", f"Bearer {api_key}"))
    return headers


def _with_usage_option(body: bytes) -> bytes | None:
    """A streamed Chat Completions request, asking for the usage chunk when it did not (the
    stream's only report of usage); None when the body needs no change."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.get("stream"):
        return None
    options = data.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        return None
    data["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    return json.dumps(data).encode()


class ClientGone(Exception):
    pass


class GatewayApp:
    """ASGI: one model request through the gateway."""

    def __init__(self) -> None:
        self._admit = _in_pool(admit)
        self._record = _in_pool(_record)
        # Records being written, by token hash: a run's next request waits for them, so its
        # budget check sees the request before it (this process; others see it committed).
        self._recording: dict[str, set[asyncio.Future[Any]]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        match = PATH_RE.match(scope["path"])
        if match is None:
            await _send_error(send, Refused(404, "ozweb gateway: /gateway/<provider id>/<path>"))
            return
        provider_id, path = int(match.group(1)), match.group(2) or "/"
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        token = run_token_of(headers, query)
        key = token_hash(token) if token else ""
        if pending := self._recording.get(key):
            await asyncio.wait(list(pending))
        client = scope.get("client") or (None, None)
        admitted = await self._admit(token=token, provider_id=provider_id, address=client[0])
        if isinstance(admitted, Refused):
            await _send_error(send, admitted)
            return
        await self._forward(scope, receive, send, admitted, path, query, key)

    async def _forward(
        self, scope: Any, receive: Any, send: Any, admitted: Admitted, path: str,
        query: list[tuple[str, str]], key: str,
    ) -> None:  # fmt: skip
        provider = admitted.provider
        kept_query = [(name, value) for name, value in query if name != "key"]
        url = provider.base_url.rstrip("/") + path
        if kept_query:
            url += "?" + urlencode(kept_query)
        method = scope.get("method", "GET")
        headers = upstream_headers(
            scope.get("headers", []), provider=provider, api_key=admitted.api_key
        )
        content: bytes | AsyncIterator[bytes]
        lowered = {name.lower() for name, _ in headers}
        if "content-length" not in lowered and "transfer-encoding" not in lowered:
            content = await _read_all(receive)  # none, as a HEAD or GET has: sent as none
        elif path.endswith("/chat/completions"):
            body = await _read_all(receive)
            if (changed := _with_usage_option(body)) is not None:
                body = changed
                headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
            content = body
        else:
            content = _body_stream(receive)
        started = time.perf_counter()
        client = upstream_client()
        request = client.build_request(method, url, headers=headers, content=content)
        try:
            response = await client.send(request, stream=True)
        except ClientGone:
            return
        except httpx.HTTPError as exc:
            message = (
                f"ozweb gateway: the provider {provider.name!r} at {provider.base_url} did not "
                f"answer ({type(exc).__name__}: {str(exc) or 'no detail'})"
            )
            logger.warning("gateway run %s: %s", admitted.run.pk, message)
            await self._record(
                run=admitted.run, provider=provider, path=path, status=0, usage=Usage(),
                ttfb_ms=None, latency_ms=_ms(started),
            )  # fmt: skip
            await _send_error(send, Refused(502, message, provider.kind))
            return
        ttfb_ms = _ms(started)
        content_type = response.headers.get("content-type", "")
        meter = UsageMeter(
            kind=provider.kind,
            streamed="text/event-stream" in content_type,
            model=_model_in_path(path) if provider.kind == GEMINI else "",
        )
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name, value)
                        for name, value in response.headers.raw
                        if name.decode("latin-1").lower() not in DROPPED_RESPONSE_HEADERS
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                meter.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            logger.warning("gateway run %s: the answer broke off: %s", admitted.run.pk, exc)
        finally:
            await response.aclose()
            # Before the answer's end goes out: the run's next request is checked against it.
            await self._recorded(
                key,
                run=admitted.run, provider=provider, path=path, status=response.status_code,
                usage=meter.finish(), ttfb_ms=ttfb_ms, latency_ms=_ms(started),
            )  # fmt: skip
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        logger.debug(
            "gateway run %s: %s %s -> %s (%s ms)",
            admitted.run.pk, method, path, response.status_code, _ms(started),
        )  # fmt: skip

    async def _recorded(self, key: str, **record: Any) -> None:
        """Record an answer that has ended; the run's next request waits for it (not for
        answers still streaming: a harness may have several requests in flight)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._recording.setdefault(key, set()).add(future)
        try:
            await self._record(**record)
        finally:
            future.set_result(None)
            waiting = self._recording.get(key)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    self._recording.pop(key, None)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _model_in_path(path: str) -> str:
    """Gemini names the model in the path: /v1beta/models/<model>:streamGenerateContent."""
    tail = path.rsplit("/models/", 1)[-1] if "/models/" in path else ""
    return tail.split(":", 1)[0]


async def _body_stream(receive: Any) -> AsyncIterator[bytes]:
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        if chunk := message.get("body", b""):
            yield chunk
        more = message.get("more_body", False)


async def _read_all(receive: Any) -> bytes:
    return b"".join([chunk async for chunk in _body_stream(receive)])


async def _send_error(send: Any, refused: Refused) -> None:
    body = error_body(refused.kind, refused.status, refused.message)
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *refused.headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def with_gateway(app: Any) -> Any:
    """`app`, with /gateway/... answered in front of it."""
    gateway = GatewayApp()

    async def route(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/gateway/"):
            await gateway(scope, receive, send)
            return
        await app(scope, receive, send)

    return route
