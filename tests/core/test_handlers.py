"""OneHopASGIHandler (apps.core.handlers) through its ASGI interface, with no server: Django's
answers, the middleware chain and the view in one call on the request's thread, and that
thread taken from (and given back to) a pool."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from pytest_django.fixtures import Settings

from apps.core import handlers
from apps.core.handlers import OneHopASGIHandler
from tests.core import handler_probe
from tests.support.asgi import RawAnswer

PROBE_MIDDLEWARE = "tests.core.handler_probe.ThreadProbeMiddleware"


async def answer(app: Any, path: str, *, method: str = "GET", body: bytes = b"") -> RawAnswer:
    """The whole answer to one request, once the handler has finished with it."""
    communicator = HttpCommunicator(app, method, path, body=body, headers=[(b"host", b"localhost")])
    response = await communicator.get_response(timeout=10)
    await communicator.wait(timeout=10)
    return RawAnswer(response["status"], list(response["headers"]), response["body"])


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """A request's thread goes back to the pool just after the handler returns, on that thread."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


def pooled(handler: OneHopASGIHandler) -> int:
    return len(handler._idle)


def visits_of(request: str) -> list[handler_probe.Visit]:
    return [visit for visit in handler_probe.visits if visit.request == request]


def view_threads() -> set[threading.Thread]:
    return {visit.thread for visit in handler_probe.visits if visit.step == "view"}


def response_thread_name(response: RawAnswer) -> str:
    return response.body.decode()


def drained(handler: OneHopASGIHandler) -> None:
    """Close each pooled thread's database connections, then end the thread."""
    for executor in handler._idle:
        executor.submit(connections.close_all).result(timeout=10)
        executor.shutdown(wait=True)


@pytest.fixture
def handler() -> Iterator[OneHopASGIHandler]:
    """The handler as ozweb/asgi.py builds it: the project's URLs and middleware."""
    app = OneHopASGIHandler()
    yield app
    drained(app)


@pytest.fixture
def probed_handler(settings: Settings) -> Iterator[OneHopASGIHandler]:
    """The handler on tests/core/handler_probe.py's URLs, with its middleware outermost in
    front of the project's."""
    settings.ROOT_URLCONF = "tests.core.handler_probe"
    settings.MIDDLEWARE = [PROBE_MIDDLEWARE, *settings.MIDDLEWARE]
    handler_probe.visits.clear()
    handler_probe.meeting.clear()
    app = OneHopASGIHandler()
    yield app
    drained(app)
    handler_probe.visits.clear()
    handler_probe.meeting.clear()


@pytest.fixture
def numbered_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call the request's executor runs is numbered, on its thread, for the probe."""
    new_executor = OneHopASGIHandler._new_executor
    numbers = itertools.count(1)

    def numbering_executor() -> ThreadPoolExecutor:
        executor = new_executor()
        submit = executor.submit

        def numbered_submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            number = next(numbers)

            def call() -> Any:
                handler_probe.hop.number = number
                return fn(*args, **kwargs)

            return submit(call)

        executor.submit = numbered_submit  # type: ignore[method-assign]
        return executor

    monkeypatch.setattr(OneHopASGIHandler, "_new_executor", staticmethod(numbering_executor))


def meeting_of(requests: int) -> None:
    """The `meet` view answers only when `requests` requests are in it at the same time."""
    handler_probe.meeting["barrier"] = threading.Barrier(requests, timeout=5)


@pytest.mark.django_db
async def test_healthz_answers_through_the_projects_middleware(
    handler: OneHopASGIHandler,
) -> None:
    response = await answer(handler, "/healthz")

    assert response.status == 200
    headers = {name.lower(): value for name, value in response.headers}
    assert headers[b"content-type"] == b"application/json"
    # Set by XFrameOptionsMiddleware: the project's chain ran around the view.
    assert headers[b"x-frame-options"] == b"DENY"
    report = json.loads(response.body)
    assert report["ok"] is True
    assert report["database"]["ok"] is True
    assert report["channel_layer"]["ok"] is True


@pytest.mark.usefixtures("numbered_hops")
async def test_the_middleware_chain_and_the_view_run_in_one_call_on_one_thread(
    probed_handler: OneHopASGIHandler,
) -> None:
    response = await answer(probed_handler, "/echo?n=1", method="POST", body=b"the body")

    assert response.status == 200
    assert response.body == b"the body"
    visits = visits_of("1")
    assert [visit.step for visit in visits] == ["process_request", "view", "process_response"]
    (thread,) = {visit.thread for visit in visits}
    assert thread is not threading.main_thread()
    assert thread.name.startswith("django-request")
    # And in one call of that thread's executor, not one each as Django's ASGIHandler makes
    # them (a sync_to_async per middleware hook and for the view).
    (hop,) = {visit.hop for visit in visits}
    assert hop is not None


async def test_consecutive_requests_reuse_the_pooled_thread(
    probed_handler: OneHopASGIHandler,
) -> None:
    await answer(probed_handler, "/echo?n=1")
    await until(lambda: pooled(probed_handler) == 1)
    await answer(probed_handler, "/echo?n=2")
    await until(lambda: pooled(probed_handler) == 1)

    (first,) = {visit.thread for visit in visits_of("1")}
    (second,) = {visit.thread for visit in visits_of("2")}
    assert second is first
    assert first.name.startswith("django-request")


async def test_concurrent_requests_each_get_their_own_thread(
    probed_handler: OneHopASGIHandler,
) -> None:
    meeting_of(3)

    responses = await asyncio.gather(*(answer(probed_handler, f"/meet?n={n}") for n in range(3)))

    assert [response.status for response in responses] == [200, 200, 200]
    assert len(view_threads()) == 3
    for n in range(3):
        (thread,) = {visit.thread for visit in visits_of(str(n))}
        assert thread.name.startswith("django-request")
        assert response_thread_name(responses[n]) == thread.name


async def test_a_bursts_threads_are_pooled_for_the_next_burst(
    probed_handler: OneHopASGIHandler,
) -> None:
    meeting_of(3)
    await asyncio.gather(*(answer(probed_handler, f"/meet?n=a{n}") for n in range(3)))
    await until(lambda: pooled(probed_handler) == 3)
    first_burst = view_threads()
    handler_probe.visits.clear()

    meeting_of(3)
    await asyncio.gather(*(answer(probed_handler, f"/meet?n=b{n}") for n in range(3)))

    assert view_threads() == first_burst


async def test_threads_beyond_the_pools_size_end_after_their_request(
    probed_handler: OneHopASGIHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "IDLE_THREADS", 1)
    meeting_of(2)
    await asyncio.gather(*(answer(probed_handler, f"/meet?n={n}") for n in range(2)))
    burst = view_threads()
    assert len(burst) == 2

    await until(lambda: sum(thread.is_alive() for thread in burst) == 1)
    (kept,) = {thread for thread in burst if thread.is_alive()}
    assert pooled(probed_handler) == 1
    await answer(probed_handler, "/echo?n=after")
    assert {visit.thread for visit in visits_of("after")} == {kept}


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
async def test_a_scope_other_than_http_is_refused_as_django_refuses_it(
    handler: OneHopASGIHandler, scope_type: str
) -> None:
    scope: dict[str, Any] = {"type": scope_type, "path": "/ws/v1/threads/1/", "headers": []}
    sent: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("a refused scope's messages are never read")

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(ValueError) as django_refusal:
        await ASGIHandler()(scope, receive, send)
    with pytest.raises(ValueError) as refusal:
        await handler(scope, receive, send)

    assert str(refusal.value) == str(django_refusal.value)
    assert f"not {scope_type}" in str(refusal.value)
    assert sent == []
    assert pooled(handler) == 0


@pytest.fixture
def signal_visits() -> Iterator[list[tuple[str, threading.Thread, int | None]]]:
    """request_started and request_finished as they fire: on which thread, in which hop."""
    from django.core import signals

    seen: list[tuple[str, threading.Thread, int | None]] = []

    def started(**kwargs: Any) -> None:
        seen.append(
            ("started", threading.current_thread(), getattr(handler_probe.hop, "number", None))
        )

    def finished(**kwargs: Any) -> None:
        seen.append(
            ("finished", threading.current_thread(), getattr(handler_probe.hop, "number", None))
        )

    signals.request_started.connect(started, dispatch_uid="handler-test-started")
    signals.request_finished.connect(finished, dispatch_uid="handler-test-finished")
    yield seen
    signals.request_started.disconnect(dispatch_uid="handler-test-started")
    signals.request_finished.disconnect(dispatch_uid="handler-test-finished")


@pytest.mark.usefixtures("numbered_hops")
async def test_request_started_and_finished_share_the_views_hop(
    probed_handler: OneHopASGIHandler, signal_visits: list[tuple[str, threading.Thread, int | None]]
) -> None:
    await answer(probed_handler, "/echo?n=1", method="POST", body=b"x")

    [view] = [v for v in visits_of("1") if v.step == "view"]
    assert [name for name, _, _ in signal_visits] == ["started", "finished"]
    assert {(thread, hop) for _, thread, hop in signal_visits} == {(view.thread, view.hop)}


@pytest.mark.usefixtures("numbered_hops")
async def test_a_streamed_response_is_closed_after_its_body_is_sent(
    probed_handler: OneHopASGIHandler, signal_visits: list[tuple[str, threading.Thread, int | None]]
) -> None:
    communicator = ApplicationCommunicator(
        probed_handler,
        {"type": "http", "method": "GET", "path": "/stream", "query_string": b"n=2",
         "headers": [(b"host", b"localhost")]},
    )  # fmt: skip
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=10)
    body = b""
    while True:
        part = await communicator.receive_output(timeout=10)
        body += part.get("body", b"")
        if not part.get("more_body"):
            break
    await communicator.wait(timeout=10)

    assert start["status"] == 200 and body == b"one two"
    [view] = [v for v in visits_of("2") if v.step == "view"]
    started, finished = signal_visits
    assert started[0] == "started" and (started[1], started[2]) == (view.thread, view.hop)
    # request_finished comes after the parts went out, on the request's thread (its own hop).
    assert finished[0] == "finished" and finished[1] is view.thread and finished[2] != view.hop
    assert [v.step for v in visits_of("2")][-2:] == ["body", "body"]
