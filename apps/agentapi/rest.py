"""POST /api/v1/agent/<verb>/: one answer for every door that speaks it.

`answer` does the whole request (the run token, the JSON body, the verb's arguments, the call,
errors as `{"detail", "code", "field"}`) in plain Python. The ASGI app below serves it straight
from daphne on a pool of long-lived threads that keep their database connection: agents call
this API many times a second, and Django's request cycle (a new thread and a new database
connection per request, middleware, DRF) cost several times the verb itself
(bench/messaging.py). The DRF views in `api.py` call the same `answer`, for the OpenAPI schema
and for Django's test client.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from rest_framework.utils.encoders import JSONEncoder

from apps.agentapi.auth import WWW_AUTHENTICATE, TokenRefused, run_for_authorization
from apps.agentapi.inputs import INPUT_CLASSES
from apps.agentapi.verbs import VERBS, request_max_bytes, verb_call
from apps.core.db import connections_done
from apps.core.errors import NotFound, ServiceError

logger = logging.getLogger(__name__)

# Enough threads for many agents blocked in delegate(wait=true) at once; created on demand.
VERB_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="agentapi")
PATH_RE = re.compile(r"^/api/v1/agent/([A-Za-z0-9_]+)/$")


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> bytes:
        # As DRF's JSONRenderer writes it.
        return json.dumps(
            self.body, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()


def error_reply(exc: ServiceError) -> Reply:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if exc.field:
        body["field"] = exc.field
        body["errors"] = {exc.field: [exc.message]}
    return Reply(exc.status_code, body)


def invalid_reply(errors: Any) -> Reply:
    """A verb's arguments did not validate: the first field and its first message."""
    errors = errors if isinstance(errors, dict) else {"non_field_errors": errors}
    name, messages = next(iter(errors.items()))
    message = messages[0] if isinstance(messages, list) and messages else messages
    body: dict[str, Any] = {"detail": f"{name}: {message}", "code": "invalid"}
    if name != "non_field_errors":
        body["field"] = name
    body["errors"] = errors
    return Reply(400, body)


def answer(*, verb: str, authorization: str, body: bytes) -> Reply:
    """The reply to `POST /api/v1/agent/<verb>/` with this Authorization header and body (cut
    at `request_max_bytes() + 1` by the caller when longer)."""
    try:
        run = run_for_authorization(authorization)
    except TokenRefused as exc:
        return Reply(
            401, {"detail": exc.message, "code": exc.code}, {"WWW-Authenticate": WWW_AUTHENTICATE}
        )
    try:
        if verb not in VERBS:
            raise NotFound(f"There is no agent verb {verb!r}. Verbs: {', '.join(VERBS)}.")
        limit = request_max_bytes()
        if len(body) > limit:
            raise ServiceError(f"The request is over {limit:,} bytes.", code="too_large")
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            return Reply(400, {"detail": f"JSON parse error - {exc}", "code": "parse_error"})
        arguments = INPUT_CLASSES[verb](data=data)
        if not arguments.is_valid():
            return invalid_reply(arguments.errors)
        return Reply(200, verb_call(run=run, verb=verb, arguments=dict(arguments.validated_data)))
    except ServiceError as exc:
        return error_reply(exc)


def in_pool(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` as a coroutine function run on the verb threads, which keep their connection."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections_done()

    return sync_to_async(call, thread_sensitive=False, executor=VERB_THREADS)


_answer = in_pool(answer)


class AgentRestApp:
    """ASGI: POST /api/v1/agent/<verb>/ answered without Django's request cycle."""

    async def __call__(self, scope: Any, receive: Any, send: Any, verb: str) -> None:
        authorization = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
        body = await _read_body(receive, request_max_bytes() + 1)
        if body is None:
            return  # the client went away
        try:
            reply = await _answer(verb=verb, authorization=authorization, body=body)
        except Exception:
            logger.exception("agent API: %s failed", verb)
            reply = Reply(500, {"detail": "ozweb failed to answer; try again.", "code": "error"})
        content = reply.content
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            *((k.lower().encode(), v.encode("latin-1")) for k, v in reply.headers.items()),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The request body, cut at `limit` bytes (the rest is not read); None on a disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if size < limit:
            chunks.append(chunk[: limit - size])
            size += len(chunks[-1])
        if not message.get("more_body", False):
            return b"".join(chunks)


def with_agent_rest(app: Any) -> Any:
    """`app`, with POST /api/v1/agent/<verb>/ answered in front of it."""
    rest = AgentRestApp()

    async def route(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            match = PATH_RE.match(scope["path"])
            if match:
                await rest(scope, receive, send, match.group(1))
                return
        await app(scope, receive, send)

    return route
