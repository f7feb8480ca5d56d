"""POST /api/v1/agent/<verb>/ as daphne serves it: answered in front of Django, on the verb
threads, with the same answers as the DRF views (test_api.py) give."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator

from apps.agentapi.rest import with_agent_rest
from apps.runs.creation import NewRun, run_create
from apps.runs.models import RunStatus
from apps.runs.tokens import token_issue
from apps.runs.transitions import run_transition
from apps.threads.models import Message
from tests.factories import AgentFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]


async def django_must_not_answer(scope, receive, send):
    raise AssertionError(f"Django was asked for {scope['method']} {scope['path']}")


async def passed_on(scope, receive, send):
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


async def call(
    path: str,
    *,
    token: str | None = None,
    body: bytes = b"{}",
    method: str = "POST",
    chunks: int = 1,
    fallback=django_must_not_answer,
) -> tuple[int, dict[str, str], bytes]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    app = ApplicationCommunicator(with_agent_rest(fallback), scope)
    size = -(-len(body) // chunks) if body else 0
    parts = [body[i : i + size] for i in range(0, len(body), size)] if body else [b""]
    for k, part in enumerate(parts):
        await app.send_input(
            {"type": "http.request", "body": part, "more_body": k < len(parts) - 1}
        )
    start = await app.receive_output(timeout=20)
    content = await app.receive_output(timeout=20)
    return (
        start["status"],
        {k.decode().lower(): v.decode() for k, v in start["headers"]},
        content["body"],
    )


@pytest.fixture
def caller(manual_run_dispatch, agent, thread):
    AgentFactory(team=agent.team, handle="reviewer")
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    return run, token_issue(run=run)


async def test_a_verb_is_answered_without_django(caller):
    run, token = caller
    body = json.dumps({"to": "@reviewer", "body": "look"}).encode()

    status, headers, content = await call("/api/v1/agent/send_message/", token=token, body=body)

    sent = json.loads(content)
    assert status == 200 and headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(content)
    message = await Message.objects.select_related("author_agent").aget(pk=sent["id"])
    assert message.author_agent.handle == "coder" and sent["deliveries"][0]["handle"] == "reviewer"


async def test_errors_have_the_same_shape_as_from_the_drf_views(caller):
    _, token = caller

    missing = await call("/api/v1/agent/whoami/")
    refused = await call("/api/v1/agent/whoami/", token="ozr_nope")
    unknown = await call("/api/v1/agent/launch_missiles/", token=token)
    invalid = await call("/api/v1/agent/send_message/", token=token, body=b'{"body": "hi"}')
    garbled = await call("/api/v1/agent/whoami/", token=token, body=b"{oops")
    nobody = await call(
        "/api/v1/agent/send_message/", token=token, body=b'{"to": "@ghost", "body": "hi"}'
    )

    assert missing[0] == 401 and json.loads(missing[2])["code"] == "not_authenticated"
    assert missing[1]["www-authenticate"].startswith("Bearer")
    assert refused[0] == 401 and json.loads(refused[2])["code"] == "invalid_token"
    assert unknown[0] == 404 and "launch_missiles" in json.loads(unknown[2])["detail"]
    assert invalid[0] == 400 and json.loads(invalid[2])["field"] == "to"
    assert garbled[0] == 400 and json.loads(garbled[2])["code"] == "parse_error"
    assert nobody[0] == 400 and json.loads(nobody[2])["code"] == "unknown_recipient"


async def test_a_body_over_the_limit_is_refused_and_not_kept(caller, settings):
    _, token = caller
    settings.OZWEB_ARTIFACT_MAX_BYTES = 1000  # the request limit is 2× that + 1 MiB
    content = "x" * 3_000_000
    body = json.dumps({"name": "big.txt", "content": content}).encode()

    status, _, reply = await call("/api/v1/agent/put_artifact/", token=token, body=body, chunks=7)

    assert status == 413 and json.loads(reply)["code"] == "too_large"


async def test_the_token_stops_working_the_moment_its_run_ends(caller):
    run, token = caller
    assert (await call("/api/v1/agent/whoami/", token=token))[0] == 200  # now cached

    await sync_to_async(run_transition)(
        run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.CANCELLED
    )

    status, _, reply = await call("/api/v1/agent/whoami/", token=token)
    assert status == 401 and json.loads(reply)["code"] == "invalid_token"


async def test_other_requests_go_on_to_django(caller):
    _, token = caller

    for method, path in [
        ("GET", "/api/v1/agent/whoami/"),
        ("POST", "/api/v1/agent/whoami"),
        ("POST", "/api/v1/teams/"),
    ]:
        status, _, content = await call(path, token=token, method=method, fallback=passed_on)
        assert (status, content) == (299, b"django"), (method, path)
