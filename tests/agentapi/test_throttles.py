"""The agent doors' throttles (apps.agentapi.auth): refused run tokens count against their
address, and each run token has a rate; past either, 429 with Retry-After, from the REST door,
its DRF view and the MCP door alike."""

from __future__ import annotations

import json
import logging
import re

import pytest

from apps.agentapi.mcp import with_mcp
from apps.agentapi.rest import with_agent_rest
from apps.runs.creation import NewRun, run_create
from apps.runs.tokens import token_issue
from tests.agentapi.test_door_parity import DRF_ONLY, both, new_stack
from tests.support.asgi import asgi_post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]

HERE, ELSEWHERE = "10.1.2.3", "10.9.9.9"
PATH = "/api/v1/agent/whoami/"
MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "throttle-test", "version": "1"},
    },
}


@pytest.fixture
def token(manual_run_dispatch, agent, thread) -> str:
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    return token_issue(run=run)


@pytest.fixture
def limits(settings) -> None:
    # Day-long windows: a test never straddles two.
    settings.OZWEB_THROTTLE_AUTH_FAILURES = "3/day"
    settings.OZWEB_THROTTLE_RUN = "1000/day"


async def post(app, path: str, *, token: str | None, address: str, body: bytes = b"{}"):
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
    ]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    answer = await asgi_post(app, path, headers=headers, body=body, client=(address, 50000))
    headers = {k.decode().lower(): v.decode() for k, v in answer.headers}
    return answer.status, headers, answer.body


def rest_door():
    return with_agent_rest(django_must_not_answer)


def mcp_door():
    return with_mcp(django_must_not_answer)


async def django_must_not_answer(scope, receive, send):
    raise AssertionError(f"Django was asked for {scope['method']} {scope['path']}")


def assert_throttled(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= 86400
    answer = json.loads(body)
    assert answer["code"] == "throttled" and "throttled" in answer["detail"]


@pytest.mark.usefixtures("limits")
@pytest.mark.parametrize(
    ("door", "path", "body"),
    [
        (rest_door, "/api/v1/agent/whoami/", b"{}"),
        (mcp_door, "/mcp/", json.dumps(MCP_INITIALIZE).encode()),
    ],
    ids=["rest", "mcp"],
)
async def test_bad_run_tokens_from_one_address_meet_429_then_so_does_any_token(
    door, path, body, token
):
    app = door()
    for bad in ("ozr_guess-1", "ozr_guess-2", "ozr_guess-3"):
        status, headers, _ = await post(app, path, token=bad, address=HERE, body=body)
        assert status == 401 and "retry-after" not in headers

    assert_throttled(*await post(app, path, token="ozr_guess-4", address=HERE, body=body))
    # A good token from there is refused too (guessing must not learn it found one)...
    assert_throttled(*await post(app, path, token=token, address=HERE, body=body))
    # ...and works from anywhere else.
    status, _, _ = await post(app, path, token=token, address=ELSEWHERE, body=body)
    assert status == 200


@pytest.mark.parametrize(
    ("door", "path", "body"),
    [
        (rest_door, "/api/v1/agent/whoami/", b"{}"),
        (mcp_door, "/mcp/", json.dumps(MCP_INITIALIZE).encode()),
    ],
    ids=["rest", "mcp"],
)
async def test_each_run_token_has_its_rate(door, path, body, settings, token, agent, thread):
    settings.OZWEB_THROTTLE_RUN = "3/day"
    other = await _other_token(agent, thread)
    app = door()
    for address in (HERE, ELSEWHERE, HERE):
        status, _, _ = await post(app, path, token=token, address=address, body=body)
        assert status == 200

    assert_throttled(*await post(app, path, token=token, address=ELSEWHERE, body=body))
    status, _, _ = await post(app, path, token=other, address=HERE, body=body)
    assert status == 200


async def _other_token(agent, thread) -> str:
    from asgiref.sync import sync_to_async

    def make() -> str:
        return token_issue(run=run_create(NewRun(agent=agent, prompt="more", thread=thread)))

    return await sync_to_async(make)()


def test_the_default_run_rate_leaves_room_for_chatty_agents(settings):
    """bench/messaging.py: 200 messages/s from 20 agents, ~10 calls/s for each run token."""
    from apps.core.throttling import Rate

    rate = Rate.parse(settings.OZWEB_THROTTLE_RUN)
    assert rate.count / rate.seconds >= 50


@pytest.mark.usefixtures("limits")
async def test_a_throttled_agent_call_gets_the_same_answer_from_django(caplog, token):
    caplog.set_level(logging.INFO, logger="django")
    stack = new_stack()
    django_app = stack[0]
    for bad in ("ozr_guess-1", "ozr_guess-2", "ozr_guess-3"):  # counted once for both doors
        status, _, _ = await post(django_app, PATH, token=bad, address="127.0.0.1")
        assert status == 401

    from_django, from_door, left_to_django = await both(stack, caplog, PATH, token=token)

    assert from_door.status == from_django.status == 429 and left_to_django == 0
    # Retry-After counts down the window's seconds: it may have ticked between the two.
    skip = {*DRF_ONLY, "retry-after"}
    assert from_door.without(*skip) == from_django.without(*skip)
    # So does the body's "available in N seconds": the same words, N at most a second apart.
    waits = [int(re.search(rb"in (\d+) seconds", a.body)[1]) for a in (from_door, from_django)]
    assert abs(waits[0] - waits[1]) <= 1
    bodies = [re.sub(rb"in \d+ seconds", b"in N seconds", a.body) for a in (from_door, from_django)]
    assert (bodies[0], from_door.logged) == (bodies[1], from_django.logged)
    assert 1 <= int(dict(from_door.headers)["Retry-After"]) <= 86400
