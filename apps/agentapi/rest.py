"""POST /api/v1/agent/<verb>/: one answer for every door that speaks it.

`answer` does the whole request (the run token, the JSON body, the verb's arguments, the call,
errors as `{"detail", "code", "field"}`) in plain Python. The ASGI app below serves it straight
from daphne on the verb threads, which keep their database connection (apps.agentapi.pool):
agents call this API many times a second, and Django's request cycle (a new thread and a new
database connection per request, async middleware hopping threads, DRF) cost several times the
verb itself (bench/messaging.py). Django's security behaviour is kept: its own middleware hooks,
logging and ASGI encoding run around every answer, and Django itself answers what it would
refuse (apps.agentapi.parity). A `delegate(wait=true)` waits on the event loop, holding no
thread (apps.agentapi.waits). The DRF views in `api.py` call the same `answer`, for the OpenAPI
schema and for Django's test client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.utils.encoders import JSONEncoder

from apps.agentapi.auth import (
    WWW_AUTHENTICATE,
    TokenRefused,
    TooManyRequests,
    run_for_authorization,
)
from apps.agentapi.inputs import arguments_check
from apps.agentapi.parity import DjangoParity
from apps.agentapi.pool import in_pool
from apps.agentapi.verbs import VERBS, request_max_bytes, verb_call
from apps.agentapi.waits import ChildWait, child_result
from apps.core.errors import NotFound, ServiceError
from apps.core.json_depth import JSONTooDeep, json_check_depth
from apps.core.throttling import request_address

PATH_RE = re.compile(r"^/api/v1/agent/([A-Za-z0-9_]+)/$")


@dataclass(frozen=True)
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

    def http_response(self) -> HttpResponse:
        return HttpResponse(
            self.content, status=self.status, content_type="application/json", headers=self.headers
        )


FAILED = Reply(500, {"detail": "ozweb failed to answer; try again.", "code": "error"})


def error_reply(exc: ServiceError) -> Reply:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if exc.field:
        body["field"] = exc.field
        body["errors"] = {exc.field: [exc.message]}
    return Reply(exc.status_code, body)


def invalid_reply(errors: Any) -> Reply:
    """A verb's arguments did not validate: the first field and its first message."""
    errors = errors if isinstance(errors, dict) else {"non_field_errors": errors}
    name, message = next(iter(errors.items()))
    # A list's item has its errors under its index ({"deliveries": {0: [...]}}): the first.
    while isinstance(message, dict | list) and message:
        message = next(iter(message.values())) if isinstance(message, dict) else message[0]
    body: dict[str, Any] = {"detail": f"{name}: {message}", "code": "invalid"}
    if name != "non_field_errors":
        body["field"] = name
    body["errors"] = errors
    return Reply(400, body)


def answer(*, verb: str, authorization: str, body: bytes, address: str | None) -> Reply | ChildWait:
    """The reply to `POST /api/v1/agent/<verb>/` from a client at `address` with this
    Authorization header and body (cut at `request_max_bytes() + 1` by the caller when
    longer), or what is left to await of a `delegate(wait=true)` (its reply once awaited:
    `Reply(200, await child_result(...))`)."""
    try:
        run = run_for_authorization(authorization, address=address)
    except TokenRefused as exc:
        return Reply(
            401, {"detail": exc.message, "code": exc.code}, {"WWW-Authenticate": WWW_AUTHENTICATE}
        )
    except TooManyRequests as exc:
        return Reply(429, {"detail": exc.message, "code": "throttled"}, exc.headers)
    try:
        if verb not in VERBS:
            raise NotFound(f"There is no agent verb {verb!r}. Verbs: {', '.join(VERBS)}.")
        limit = request_max_bytes()
        if len(body) > limit:
            return Reply(
                413, {"detail": f"The request is over {limit:,} bytes.", "code": "too_large"}
            )
        try:
            json_check_depth(body)
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except JSONTooDeep as exc:
            return Reply(400, {"detail": str(exc), "code": "too_deep"})
        except (UnicodeDecodeError, ValueError) as exc:
            return Reply(400, {"detail": f"JSON parse error - {exc}", "code": "parse_error"})
        arguments, errors = arguments_check(verb, data)
        if arguments is None:
            return invalid_reply(errors)
        result = verb_call(run=run, verb=verb, arguments=arguments)
    except ServiceError as exc:
        return error_reply(exc)
    return result if isinstance(result, ChildWait) else Reply(200, result)


@dataclass(frozen=True)
class _Answered:
    request: HttpRequest  # as Django saw it
    outcome: Reply | ChildWait
    failure: BaseException | None = None  # what made it a 500


class AgentRestApp:
    """ASGI: POST /api/v1/agent/<verb>/ answered without Django's request cycle, but with its
    middleware's checks and headers; what Django would refuse, `django` answers."""

    def __init__(self, django: Any) -> None:
        self._django = django
        self._parity = DjangoParity()
        self._answer = in_pool(self._answer_on_thread)

    def _answer_on_thread(self, scope: Any, verb: str, body: bytes) -> _Answered | None:
        request = self._parity.request(scope, body)
        if request is None:
            return None
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        address = request_address(request)
        try:
            reply = answer(verb=verb, authorization=authorization, body=body, address=address)
            return _Answered(request, reply)
        except Exception as exc:
            return _Answered(request, FAILED, exc)

    async def __call__(self, scope: Any, receive: Any, send: Any, verb: str) -> None:
        body = await _read_body(receive, request_max_bytes() + 1)
        if body is None:
            return  # the client went away
        answered = await self._answer(scope, verb, body)
        if answered is None:
            await self._django(scope, _replayed(body, receive), send)
            return
        outcome, failure = answered.outcome, answered.failure
        if isinstance(outcome, ChildWait):
            try:
                outcome = Reply(200, await child_result(outcome))
            except ServiceError as exc:  # e.g. the delegation was removed meanwhile
                outcome = error_reply(exc)
            except Exception as exc:
                outcome, failure = FAILED, exc
        response = self._parity.response(
            answered.request, outcome.http_response(), exception=failure
        )
        await self._parity.send(response, send)


def _replayed(body: bytes, receive: Any) -> Any:
    """`receive` for an app given a request whose body was read already."""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


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
    rest = AgentRestApp(app)

    async def route(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            match = PATH_RE.match(scope["path"])
            if match:
                await rest(scope, receive, send, match.group(1))
                return
        await app(scope, receive, send)

    return route
