"""The agent API as an MCP server (official `mcp` SDK, streamable HTTP) at /mcp/.

Each request is authenticated by its run token before the SDK sees it: a missing, unknown or
expired token is a 401 with a JSON error, and the run tokens' throttles (apps.agentapi.auth)
answer 429 with Retry-After. Django's security behaviour is kept as at the REST door
(apps.agentapi.parity): what Django's middleware would refuse (a Host not in
ALLOWED_HOSTS, ...) Django answers, and every response start gets the headers Django's
middleware adds, logged as Django logs 4xx and 5xx. The SDK's session manager runs stateless
(every POST stands alone, so any web process can answer it) and is started on the first
request, because daphne sends no ASGI lifespan events. The verbs are sync Django code: they run
on the verb threads (apps.agentapi.pool); a `delegate(wait=true)` waits on the event loop
(apps.agentapi.waits), holding no thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import weakref
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.agentapi.auth import (
    MISSING_TOKEN,
    WWW_AUTHENTICATE,
    TokenRefused,
    TooManyRequests,
    run_for_authorization,
)
from apps.agentapi.inputs import arguments_check
from apps.agentapi.parity import DjangoParity
from apps.agentapi.pool import in_pool
from apps.agentapi.rest import invalid_reply
from apps.agentapi.verbs import DESCRIPTIONS, request_max_bytes, verb_call
from apps.agentapi.waits import ChildWait, child_result
from apps.core.errors import ServiceError
from apps.core.throttling import request_address
from apps.runs.models import Run

MCP_PATHS = frozenset({"/mcp", "/mcp/"})
RUN_SCOPE_KEY = "ozweb.run"
# Stateless transports "terminate" after every request; that is not news.
logging.getLogger("mcp.server.streamable_http").setLevel(logging.WARNING)

server = MCPServer(
    name="ozweb",
    instructions=(
        "ozweb connects you to your team: the humans and other AI agents you work with. "
        "Message them, read and acknowledge your inbox, delegate goals to other agents, "
        "keep files, plans, patches and reports as versioned artifacts, and share facts in "
        "team memory. You act as your own agent, in your own team."
    ),
)


# -- calling the verbs -----------------------------------------------------------------------

_verb_call = in_pool(verb_call)


async def _call(ctx: Context, verb: str, **arguments: Any) -> dict[str, Any]:
    request = ctx.request_context.request
    run = getattr(request, "scope", {}).get(RUN_SCOPE_KEY)
    if run is None:  # only reachable by mounting the server without McpApp
        raise ToolError(MISSING_TOKEN)
    # Checked as the REST door checks them (ids in range, media types, ...), beyond the types
    # the SDK checks from the signatures below.
    checked, errors = arguments_check(verb, arguments)
    if checked is None:
        raise ToolError(invalid_reply(errors).body["detail"])
    try:
        result = await _verb_call(run=run, verb=verb, arguments=checked)
        return await child_result(result) if isinstance(result, ChildWait) else result
    except ServiceError as exc:
        raise ToolError(exc.message) from None


# -- the tools (names and arguments are those of apps.agentapi.services) ---------------------


def _tool(fn: Callable[..., Any]) -> Callable[..., Any]:
    server.add_tool(fn, description=DESCRIPTIONS[fn.__name__])
    return fn


@_tool
async def whoami(ctx: Context) -> dict[str, Any]:
    return await _call(ctx, "whoami")


@_tool
async def list_team(ctx: Context) -> dict[str, Any]:
    return await _call(ctx, "list_team")


@_tool
async def post_message(ctx: Context, body: str, thread: int | str | None = None) -> dict[str, Any]:
    return await _call(ctx, "post_message", body=body, thread=thread)


@_tool
async def send_message(
    ctx: Context, to: list[str] | str, body: str, thread: int | str | None = None
) -> dict[str, Any]:
    return await _call(ctx, "send_message", to=to, body=body, thread=thread)


@_tool
async def read_inbox(ctx: Context, limit: int = 50, include_read: bool = False) -> dict[str, Any]:
    return await _call(ctx, "read_inbox", limit=limit, include_read=include_read)


@_tool
async def ack(ctx: Context, deliveries: list[int]) -> dict[str, Any]:
    return await _call(ctx, "ack", deliveries=deliveries)


@_tool
async def delegate(
    ctx: Context, to: str, goal: str, wait: bool = False, timeout: float = 600
) -> dict[str, Any]:
    return await _call(ctx, "delegate", to=to, goal=goal, wait=wait, timeout=timeout)


@_tool
async def get_run(ctx: Context, run_id: int) -> dict[str, Any]:
    return await _call(ctx, "get_run", run_id=run_id)


@_tool
async def put_artifact(
    ctx: Context,
    name: str,
    content: str,
    kind: str = "file",
    media_type: str = "",
    url: str = "",
) -> dict[str, Any]:
    return await _call(
        ctx, "put_artifact", name=name, content=content, kind=kind, media_type=media_type, url=url
    )


@_tool
async def get_artifact(ctx: Context, name: str, version: int | None = None) -> dict[str, Any]:
    return await _call(ctx, "get_artifact", name=name, version=version)


@_tool
async def list_artifacts(ctx: Context, thread: int | str | None = None) -> dict[str, Any]:
    return await _call(ctx, "list_artifacts", thread=thread)


@_tool
async def memory_get(ctx: Context, key: str) -> dict[str, Any]:
    return await _call(ctx, "memory_get", key=key)


@_tool
async def memory_set(ctx: Context, key: str, value: str) -> dict[str, Any]:
    return await _call(ctx, "memory_set", key=key, value=value)


@_tool
async def memory_list(ctx: Context, prefix: str = "") -> dict[str, Any]:
    return await _call(ctx, "memory_list", prefix=prefix)


@_tool
async def list_changes(ctx: Context, status: str = "open", mine: bool = False) -> dict[str, Any]:
    return await _call(ctx, "list_changes", status=status, mine=mine)


@_tool
async def get_change(
    ctx: Context, change_id: int, version: int | None = None, since: int | None = None
) -> dict[str, Any]:
    return await _call(ctx, "get_change", change_id=change_id, version=version, since=since)


@_tool
async def get_review_comments(
    ctx: Context, change_id: int | None = None, artifact: str = "", state: str = ""
) -> dict[str, Any]:
    return await _call(
        ctx, "get_review_comments", change_id=change_id, artifact=artifact, state=state
    )


# -- the ASGI door ---------------------------------------------------------------------------


def _new_session_manager() -> StreamableHTTPSessionManager:
    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        # The Host is checked as Django checks it (ALLOWED_HOSTS, in McpApp), and every
        # request carries a bearer token a web page cannot forge: no second allow-list here.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=request_max_bytes(),
    )
    return server.session_manager


async def _hold_running(manager: StreamableHTTPSessionManager, ready: asyncio.Future) -> None:
    try:
        async with manager.run():
            ready.set_result(manager)
            await asyncio.Event().wait()  # for the life of the event loop
    except BaseException as exc:
        if not ready.done():
            ready.set_exception(exc)
        raise


class McpApp:
    """ASGI app for /mcp: authenticate, then let the SDK answer; what Django would refuse,
    `django` answers."""

    def __init__(self, django: ASGIApp) -> None:
        self._django = django
        self._parity = DjangoParity()
        self._admit = in_pool(self._admit_on_thread)
        # One running session manager per event loop (daphne has one; tests may have more).
        self._ready: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future] = (
            weakref.WeakKeyDictionary()
        )
        self._holders: set[asyncio.Task] = set()

    async def _session_manager(self) -> StreamableHTTPSessionManager:
        loop = asyncio.get_running_loop()
        ready = self._ready.get(loop)
        if ready is None:
            ready = self._ready[loop] = loop.create_future()
            # A clean context: the holder outlives the request that happens to start it.
            holder = loop.create_task(
                _hold_running(_new_session_manager(), ready), context=contextvars.Context()
            )
            self._holders.add(holder)
            holder.add_done_callback(self._holders.discard)
        return await asyncio.shield(ready)

    def _admit_on_thread(
        self, scope: Scope
    ) -> tuple[HttpRequest, Run | TokenRefused | TooManyRequests] | None:
        """The request as Django sees it and the caller's run (or why there is none); None
        when Django would answer the request itself."""
        request = self._parity.request(scope, resolve=False)  # no Django view serves /mcp
        if request is None:
            return None
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        try:
            return request, run_for_authorization(authorization, address=request_address(request))
        except (TokenRefused, TooManyRequests) as exc:
            return request, exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        admitted = await self._admit(scope)
        if admitted is None:
            await self._django(scope, receive, send)
            return
        request, run = admitted
        send = self._sent_as_django_would(request, send)
        if isinstance(run, TokenRefused):
            await _json_response(
                send,
                401,
                {"detail": run.message, "code": run.code},
                {"WWW-Authenticate": WWW_AUTHENTICATE},
            )
            return
        if isinstance(run, TooManyRequests):
            await _json_response(
                send, 429, {"detail": run.message, "code": "throttled"}, run.headers
            )
            return
        manager = await self._session_manager()
        await manager.handle_request({**scope, RUN_SCOPE_KEY: run}, receive, send)

    def _sent_as_django_would(self, request: HttpRequest, send: Send) -> Send:
        """`send`, with the response start through Django's response-side middleware."""

        async def send_through(message: Message) -> None:
            if message["type"] == "http.response.start":
                start = await self._parity.start_message(
                    request, message["status"], list(message.get("headers", []))
                )
                message = {**message, "status": start["status"], "headers": start["headers"]}
            await send(message)

        return send_through


async def _json_response(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *((name.lower().encode(), value.encode()) for name, value in headers.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def with_mcp(app: ASGIApp) -> ASGIApp:
    """`app`, with /mcp and /mcp/ answered by the MCP server in front of it."""
    mcp_app = McpApp(app)

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in MCP_PATHS:
            await mcp_app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return route
