"""The agent doors answer in front of Django, with Django's security behaviour: the same bad
requests get the same status, headers (security headers included), body and log lines from
the REST door as from Django's own stack (its ASGI handler, middleware and the DRF view of
/api/v1/agent/<verb>/), and the MCP door gets the same checks and security headers."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler

from apps.agentapi.mcp import with_mcp
from apps.agentapi.parity import DjangoParity
from apps.agentapi.rest import with_agent_rest
from apps.runs.creation import NewRun, run_create
from apps.runs.tokens import token_issue
from tests.support.asgi import asgi_post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]

# What the DRF view adds that is not Django's security behaviour (content negotiation).
DRF_ONLY = {"allow", "vary"}
SECURITY_HEADERS = (
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "strict-transport-security",
)
MCP_ACCEPT = (b"accept", b"application/json, text/event-stream")
MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "parity-test", "version": "1"},
    },
}


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # as sent, in order
    body: bytes
    logged: list[tuple[str, str, str]]  # (logger, level, message) of django.* records

    def without(self, *names: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.headers if k.lower() not in names]

    def security(self) -> dict[str, str]:
        present = {k.lower(): v for k, v in self.headers}
        return {k: present[k] for k in SECURITY_HEADERS if k in present}


class Counting:
    """An ASGI app that counts the requests it is given (to see who answered)."""

    def __init__(self, app) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        await self.app(scope, receive, send)


async def exchange(
    app,
    caplog,
    path: str,
    *,
    host: str = "127.0.0.1:8000",
    token: str | None = None,
    body: bytes = b"{}",
    scheme: str = "http",
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> Answer:
    headers = [(b"host", host.encode()), (b"content-type", b"application/json"), *extra]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    caplog.clear()
    answer = await asgi_post(app, path, headers=headers, body=body, scheme=scheme)
    return Answer(
        status=answer.status,
        headers=[(k.decode(), v.decode()) for k, v in answer.headers],
        body=answer.body,
        logged=[
            (r.name, r.levelname, r.getMessage())
            for r in caplog.records
            if r.name.startswith("django.")
        ],
    )


@pytest.fixture
def token(manual_run_dispatch, agent, thread) -> str:
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    return token_issue(run=run)


def new_stack():
    """Django's own ASGI application, and the REST door in front of it (as in ozweb.asgi).
    Middleware reads its settings when it is made: make these after changing settings."""
    django_app = ASGIHandler()  # what get_asgi_application() returns, once Django is set up
    behind_door = Counting(django_app)
    return django_app, with_agent_rest(behind_door), behind_door


@pytest.fixture
def stack(caplog):
    caplog.set_level(logging.INFO, logger="django")
    return new_stack()


async def both(stack, caplog, path: str, **request) -> tuple[Answer, Answer, int]:
    """The same request to Django and to the door: both answers, and how many requests the
    door left to Django."""
    django_app, door, behind_door = stack
    before = behind_door.calls
    from_django = await exchange(django_app, caplog, path, **request)
    from_door = await exchange(door, caplog, path, **request)
    return from_django, from_door, behind_door.calls - before


def assert_same(from_django: Answer, from_door: Answer, *, body: bool = True) -> None:
    assert from_door.status == from_django.status
    assert from_door.without(*DRF_ONLY) == from_django.without(*DRF_ONLY)  # order too
    assert from_door.logged == from_django.logged
    if body:
        assert from_door.body == from_django.body


async def test_bad_requests_get_the_same_answer_from_the_door_as_from_django(
    stack, caplog, token, settings
):
    settings.OZWEB_ARTIFACT_MAX_BYTES = 1000  # the request limit is 2× that + 1 MiB
    oversized = json.dumps({"name": "big.txt", "content": "x" * 3_000_000}).encode()
    cases = {
        "foreign host": dict(path="/api/v1/agent/whoami/", host="evil.example", token=token),
        "oversized body": dict(path="/api/v1/agent/put_artifact/", token=token, body=oversized),
        "no token": dict(path="/api/v1/agent/whoami/"),
        "bad token": dict(path="/api/v1/agent/whoami/", token="ozr_not-a-token"),
        "unknown verb": dict(path="/api/v1/agent/launch_missiles/", token=token),
        "bad arguments": dict(path="/api/v1/agent/send_message/", token=token, body=b"{}"),
        "garbled json": dict(path="/api/v1/agent/whoami/", token=token, body=b"{oops"),
        "good request": dict(path="/api/v1/agent/whoami/", token=token),
    }
    statuses = {}
    for name, request in cases.items():
        from_django, from_door, left_to_django = await both(stack, caplog, **request)

        assert_same(from_django, from_door)
        assert from_door.security()["x-content-type-options"] == "nosniff", name
        # Django refuses a foreign Host in CommonMiddleware, inside SecurityMiddleware but
        # before XFrameOptionsMiddleware: that answer has no X-Frame-Options, from either.
        assert from_door.security().get("x-frame-options") == (
            None if name == "foreign host" else "DENY"
        ), name
        assert left_to_django == (1 if name == "foreign host" else 0), name
        statuses[name] = from_door.status

    assert statuses == {
        "foreign host": 400,
        "oversized body": 413,
        "no token": 401,
        "bad token": 401,
        "unknown verb": 404,
        "bad arguments": 400,
        "garbled json": 400,
        "good request": 200,
    }


async def test_bad_requests_are_logged_as_django_logs_them(stack, caplog, token):
    from_django, from_door, _ = await both(
        stack, caplog, "/api/v1/agent/whoami/", token="ozr_not-a-token"
    )
    foreign = await both(stack, caplog, "/api/v1/agent/whoami/", host="evil.example")

    assert (
        from_door.logged
        == from_django.logged
        == [("django.request", "WARNING", "Unauthorized: /api/v1/agent/whoami/")]
    )
    assert foreign[1].logged == foreign[0].logged
    assert [name for name, _, _ in foreign[1].logged] == ["django.security.DisallowedHost"]


async def test_security_settings_act_on_the_door_as_on_django(caplog, token, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = []  # by default the agent doors are (test_transport.py)
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    caplog.set_level(logging.INFO, logger="django")
    stack = new_stack()

    redirected = await both(stack, caplog, "/api/v1/agent/whoami/", token=token)
    secure = await both(
        stack,
        caplog,
        "/api/v1/agent/whoami/",
        token=token,
        extra=((b"x-forwarded-proto", b"https"),),
    )

    for from_django, from_door, _ in (redirected, secure):
        assert_same(from_django, from_door)
    assert redirected[1].status == 301 and redirected[2] == 1  # Django redirected it
    assert secure[1].status == 200 and secure[2] == 0  # the door answered it
    assert secure[1].security()["strict-transport-security"] == "max-age=3600"
    assert secure[1].security()["x-frame-options"] == "SAMEORIGIN"


async def test_hosts_are_checked_with_djangos_debug_defaults(stack, caplog, token, settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []  # with DEBUG, Django allows localhost and loopback addresses

    local = await both(stack, caplog, "/api/v1/agent/whoami/", host="localhost:8000", token=token)
    foreign = await both(stack, caplog, "/api/v1/agent/whoami/", host="evil.example", token=token)

    assert_same(*local[:2])
    assert local[1].status == 200 and local[2] == 0
    # Django's debug page for the refusal (both from Django: it names no addresses).
    assert_same(*foreign[:2], body=False)
    assert foreign[1].status == 400 and foreign[2] == 1


async def test_the_mcp_door_checks_and_answers_as_django_would(stack, caplog, token, settings):
    django_app, _, _ = stack
    behind_mcp = Counting(django_app)
    mcp_door = with_mcp(behind_mcp)
    settings.OZWEB_ARTIFACT_MAX_BYTES = 1000
    initialize = json.dumps(MCP_INITIALIZE).encode()
    oversized = json.dumps({**MCP_INITIALIZE, "pad": "x" * 3_000_000}).encode()

    def to_mcp(**request):
        return exchange(mcp_door, caplog, "/mcp/", extra=(MCP_ACCEPT,), **request)

    django_answers = {
        "foreign host": await exchange(
            django_app, caplog, "/api/v1/agent/whoami/", host="evil.example", token=token
        ),
        "bad token": await exchange(
            django_app, caplog, "/api/v1/agent/whoami/", token="ozr_not-a-token"
        ),
        "good request": await exchange(django_app, caplog, "/api/v1/agent/whoami/", token=token),
    }
    mcp_answers = {
        "foreign host": await to_mcp(host="evil.example", token=token, body=initialize),
        "bad token": await to_mcp(token="ozr_not-a-token", body=initialize),
        "good request": await to_mcp(token=token, body=initialize),
    }
    too_large = await to_mcp(token=token, body=oversized)

    for name, from_django in django_answers.items():
        from_mcp = mcp_answers[name]
        assert from_mcp.status == from_django.status, name
        assert from_mcp.security() == from_django.security(), name
        assert from_mcp.security()["x-content-type-options"] == "nosniff", name
    assert behind_mcp.calls == 1  # the foreign host only: Django refused it
    assert mcp_answers["foreign host"].body == django_answers["foreign host"].body
    assert json.loads(mcp_answers["bad token"].body)["code"] == "invalid_token"
    assert mcp_answers["bad token"].logged == [("django.request", "WARNING", "Unauthorized: /mcp/")]
    assert json.loads(mcp_answers["good request"].body)["result"]["serverInfo"]["name"] == "ozweb"
    assert (
        too_large.status == 413 and too_large.security() == django_answers["bad token"].security()
    )


def test_a_middleware_the_doors_cannot_replay_stops_them_from_starting(settings):
    """Middleware without hooks (only a __call__) may do anything around a view: the doors
    cannot do it too, so they refuse to serve rather than differ from Django."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.agentapi.test_door_parity.Opaque"]

    with pytest.raises(ImproperlyConfigured, match="Opaque has no middleware hooks"):
        DjangoParity()


class Opaque:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


def test_the_doors_remember_a_paths_resolution_per_urlconf(settings):
    """Resolved once per path (apps.agentapi.parity._resolve), as Django resolves it."""
    from django.urls import resolve

    from apps.agentapi.parity import DjangoParity

    parity = DjangoParity()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/agent/whoami/",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    first = parity.request(scope)
    second = parity.request(scope)
    assert first is not None and second is not None
    assert second.resolver_match is first.resolver_match  # remembered
    expected = resolve("/api/v1/agent/whoami/")
    assert (first.resolver_match.func, first.resolver_match.url_name) == (
        expected.func,
        expected.url_name,
    )
    other = parity.request({**scope, "path": "/api/v1/agent/list_team/"})
    assert other is not None and other.resolver_match.url_name == "list_team"
    assert parity.request({**scope, "path": "/api/v1/agent/nope/x/"}) is None  # Django's 404
