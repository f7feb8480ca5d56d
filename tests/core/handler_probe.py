"""A URLconf and a middleware for tests/core/test_handlers.py: each records, per request, on
which thread and in which call to the request's executor (hop) it ran."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.utils.deprecation import MiddlewareMixin
from django.views.decorators.csrf import csrf_exempt


@dataclass(frozen=True)
class Visit:
    request: str  # the request's `n` query parameter
    step: str  # process_request, view or process_response
    thread: threading.Thread
    hop: int | None  # set by the test's counting executor, None without it


visits: list[Visit] = []
# The number of the executor call running on this thread (tests/core/test_handlers.py sets it).
hop = threading.local()
# What the `meet` view waits at: the test sets one for as many requests as it sends at once.
meeting: dict[str, threading.Barrier] = {}


def record(request: HttpRequest, step: str) -> None:
    visits.append(
        Visit(
            request=request.GET.get("n", ""),
            step=step,
            thread=threading.current_thread(),
            hop=getattr(hop, "number", None),
        )
    )


class ThreadProbeMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> None:
        record(request, "process_request")

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        record(request, "process_response")
        return response


@csrf_exempt
def echo(request: HttpRequest) -> HttpResponse:
    record(request, "view")
    return HttpResponse(request.body, content_type="application/octet-stream")


def meet(request: HttpRequest) -> HttpResponse:
    """Answers once every request of the meeting is in a view at the same time."""
    record(request, "view")
    meeting["barrier"].wait()
    return HttpResponse(threading.current_thread().name)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    """A streamed body: each part is recorded as the server takes it."""
    record(request, "view")

    async def parts():  # async: served without a thread of its own
        for part in (b"one ", b"two"):
            record(request, "body")
            yield part

    return StreamingHttpResponse(parts())


urlpatterns = [
    path("echo", echo),
    path("meet", meet),
    path("stream", stream),
]
