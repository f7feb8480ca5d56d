"""`delegate(wait=true)` waits on the event loop, not on a thread: hundreds of waiting
delegations leave every other agent call answered at once, each returns when its own child
run ends, and a wait that ends early (timeout, client gone) stops marking its child as
awaited, so the child's result wakes the parent instead."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx2
import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.db import connection
from rest_framework.test import APIClient

from apps.agentapi.rest import with_agent_rest
from apps.agentapi.waits import CHECK_SECONDS
from apps.runs.creation import NewRun, run_create
from apps.runs.models import Run, RunStatus
from apps.runs.tokens import token_issue
from apps.threads.models import Delivery
from tests.agentapi.conftest import World, finish, start_run
from tests.factories import AgentFactory, ThreadFactory

WAITERS = 200
PROMPT_SECONDS = 2.0  # "promptly", for any one call made while the delegations wait
LAUNCH_BURST = 20


# -- 200 waiting delegations against a live daphne ---------------------------------------------


class DelegateCalls(threading.Thread):
    """Concurrent `POST /api/v1/agent/delegate/` with wait=true, one per (token, delegate),
    each on its own connection, from an event loop in this thread; `results` fills in as
    they return."""

    def __init__(self, url: str, callers: list[tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.url, self.callers = url, callers
        self.results: list[dict[str, Any]] = []
        self.returned_at: list[float] = []
        self.error: BaseException | None = None

    async def _call(self, client: httpx2.AsyncClient, token: str, to: str) -> None:
        response = await client.post(
            "/api/v1/agent/delegate/",
            json={"to": to, "goal": f"task for {to}", "wait": True, "timeout": 300},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        self.results.append(response.json())
        self.returned_at.append(time.monotonic())

    async def _all(self) -> None:
        limits = httpx2.Limits(max_connections=len(self.callers) + 10, max_keepalive_connections=0)
        timeout = httpx2.Timeout(60, read=300)
        async with httpx2.AsyncClient(base_url=self.url, limits=limits, timeout=timeout) as client:
            calls = []
            for n, (token, to) in enumerate(self.callers):
                # In bursts of LAUNCH_BURST: 200 connects at one instant overflow daphne's
                # listen backlog (50) on a loaded machine, and what is measured is 200 waits
                # held at once, not 200 simultaneous handshakes.
                if n and n % LAUNCH_BURST == 0:
                    await asyncio.sleep(0.1)
                calls.append(asyncio.ensure_future(self._call(client, token, to)))
            await asyncio.gather(*calls)

    def run(self) -> None:
        try:
            asyncio.run(self._all())
        except BaseException as exc:  # reported by the test
            self.error = exc


def wait_until(condition, *, seconds: float, what: str, calls: DelegateCalls | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        # A failed call ends the others (gather): say why at once instead of timing out.
        assert calls is None or calls.error is None, f"while waiting for {what}: {calls.error!r}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_200_waiting_delegations_leave_other_agent_calls_answered_at_once(world: World):
    # 200 agents, each in a thread of its own, each delegating to an agent of its own: the
    # waits are what is measured, not 200 writers queueing for one thread's or agent's row.
    callers, parents = [], []
    for k in range(WAITERS):
        lead = AgentFactory(team=world.team, handle=f"lead{k}")
        AgentFactory(team=world.team, handle=f"helper{k}")
        run, token = start_run(lead, ThreadFactory(team=world.team, name=f"work-{k}"))
        callers.append((token, f"@helper{k}"))
        parents.append(run.pk)
    calls = DelegateCalls(world.url, callers)
    started = time.monotonic()
    calls.start()
    awaited = Run.objects.filter(parent_id__in=parents, parent_waiting=True)
    wait_until(
        lambda: awaited.count() == WAITERS, seconds=120, what="200 awaited children", calls=calls
    )
    all_waiting = time.monotonic() - started

    latencies: dict[str, list[float]] = {"whoami": [], "send_message": [], "mcp whoami": []}
    with httpx2.Client(
        base_url=world.url, headers={"Authorization": f"Bearer {world.token}"}, timeout=30
    ) as client:
        for k in range(10):
            for verb, body in (
                ("whoami", {}),
                ("send_message", {"to": "@reviewer", "body": str(k)}),
            ):
                began = time.monotonic()
                response = client.post(f"/api/v1/agent/{verb}/", json=body)
                latencies[verb].append(time.monotonic() - began)
                assert response.status_code == 200, response.text
    for _ in range(3):
        began = time.monotonic()
        assert world.mcp().ok("whoami")["handle"] == "coder"
        latencies["mcp whoami"].append(time.monotonic() - began)
    returned_early = len(calls.results)

    children = list(awaited.select_related("agent"))
    finishing = time.monotonic()
    for child in children:
        finish(child, result=f"done by @{child.agent.handle}")
    calls.join(timeout=120)
    connection.close()

    slowest = {verb: max(times) for verb, times in latencies.items()}
    print(
        f"\n{WAITERS} delegate(wait=true) calls all waiting after {all_waiting:.1f} s; "
        "meanwhile the slowest "
        + ", ".join(f"{verb} took {1000 * s:.0f} ms" for verb, s in slowest.items())
        + f"; {len(children)} children finished in {time.monotonic() - finishing:.1f} s, "
        f"the last call returned {max(calls.returned_at, default=finishing) - finishing:.1f} s "
        "after the first child was finished"
    )
    assert calls.error is None, calls.error
    assert returned_early == 0  # none returned before its child ended
    assert all(s < PROMPT_SECONDS for s in slowest.values()), slowest
    assert len(calls.results) == WAITERS
    assert {r["status"] for r in calls.results} == {RunStatus.SUCCEEDED}
    assert sorted(r["result"] for r in calls.results) == sorted(
        f"done by @helper{k}" for k in range(WAITERS)
    )
    assert not any("timed_out_waiting" in r for r in calls.results)


# -- one door in process (any database) ----------------------------------------------------------


async def django_must_not_answer(scope, receive, send):
    raise AssertionError(f"Django was asked for {scope['method']} {scope['path']}")


async def delegate_call(token: str, **arguments: Any) -> ApplicationCommunicator:
    """A `delegate` request to the REST door, sent (its answer not yet read)."""
    body = json.dumps({"to": "@reviewer", "goal": "check", "wait": True, **arguments}).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/agent/delegate/",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode())],
    }
    call = ApplicationCommunicator(with_agent_rest(django_must_not_answer), scope)
    await call.send_input({"type": "http.request", "body": body})
    return call


async def answer_of(call: ApplicationCommunicator, timeout: float = 20) -> dict[str, Any]:
    start = await call.receive_output(timeout=timeout)
    body = await call.receive_output(timeout=timeout)
    assert start["status"] == 200, body
    return json.loads(body["body"])


async def awaited_children(parent: Run, count: int) -> list[Run]:
    """The parent's children marked as awaited, once there are `count` of them."""

    def found() -> list[Run]:
        return list(Run.objects.filter(parent=parent, parent_waiting=True).order_by("id"))

    for _ in range(100):
        children = await sync_to_async(found)()
        if len(children) == count:
            return children
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} awaited children never appeared")


@pytest.fixture
def caller(manual_run_dispatch, agent, thread) -> tuple[Run, str]:
    AgentFactory(team=agent.team, handle="reviewer", max_concurrent_runs=10)
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    return run, token_issue(run=run)


@pytest.fixture
def not_shared_cache_sqlite() -> None:
    # The waits' checks read on verb threads while the test writes (finishing children): in
    # the shared-cache in-memory database SQLite tests use, such a reader gets "database table
    # is locked" at once (a file database, the product's, makes it wait instead).
    if connection.vendor != "postgresql":
        pytest.skip("readers and a writer on other threads: PostgreSQL (DATABASE_URL)")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed", "not_shared_cache_sqlite")
async def test_each_wait_returns_when_its_own_child_ends(caller):
    run, token = caller
    calls = []
    for k in range(1, 4):  # one by one: each child appears before the next call
        calls.append(await delegate_call(token, timeout=60))
        children = await awaited_children(run, k)

    await sync_to_async(finish)(children[1], result="second is done")
    second = await answer_of(calls[1])
    others_pending = [await c.receive_nothing(3 * CHECK_SECONDS) for c in (calls[0], calls[2])]
    for child in (children[0], children[2]):
        await sync_to_async(finish)(child, result="done too")
    rest = [await answer_of(c) for c in (calls[0], calls[2])]

    assert (second["run"], second["status"], second["result"]) == (
        children[1].pk,
        RunStatus.SUCCEEDED,
        "second is done",
    )
    assert others_pending == [True, True]
    assert [r["run"] for r in rest] == [children[0].pk, children[2].pk]
    assert {r["result"] for r in rest} == {"done too"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
async def test_a_wait_that_times_out_says_so_and_its_child_is_no_longer_awaited(caller):
    run, token = caller
    call = await delegate_call(token, timeout=1)
    [child] = await awaited_children(run, 1)

    status = await answer_of(call)

    await child.arefresh_from_db()
    assert status["timed_out_waiting"] is True
    assert (status["run"], status["status"]) == (child.pk, RunStatus.QUEUED)
    assert child.parent_waiting is False  # its result will wake the parent


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
async def test_a_wait_whose_client_went_away_releases_its_child(caller):
    run, token = caller
    call = await delegate_call(token, timeout=60)
    [child] = await awaited_children(run, 1)

    call.future.cancel()  # as daphne does to an app whose client has gone
    await asyncio.sleep(3 * CHECK_SECONDS)

    await child.arefresh_from_db()
    assert child.parent_waiting is False


def test_the_drf_view_waits_too(manual_run_dispatch, agent, thread):
    """Django's test client (no event loop, one transaction): the wait's checks run on the
    request's own thread."""
    AgentFactory(team=agent.team, handle="reviewer")
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    token = token_issue(run=run)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = client.post(
        "/api/v1/agent/delegate/",
        {"to": "@reviewer", "goal": "g", "wait": True, "timeout": 1},
        format="json",
    )

    child = Run.objects.get(parent=run)
    assert response.status_code == 200
    assert response.json()["timed_out_waiting"] is True and response.json()["run"] == child.pk
    assert child.parent_waiting is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
async def test_a_wait_whose_delegation_was_removed_meanwhile_is_a_clear_404(caller):
    run, token = caller
    call = await delegate_call(token, timeout=1)
    [child] = await awaited_children(run, 1)
    await Delivery.objects.filter(run=child).adelete()  # history removed behind the call

    start = await call.receive_output(timeout=20)
    body = json.loads((await call.receive_output(timeout=20))["body"])

    assert start["status"] == 404
    assert "no longer exists" in body["detail"]
