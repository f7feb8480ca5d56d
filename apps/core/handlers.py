"""The ASGI handler that serves Django's views: Django's own, with two of its per-request
costs taken out (bench/writes.py, py-spy under daphne).

* The middleware chain and the view run as one hop to the request's thread. Django's
  ASGIHandler runs each sync middleware hook (process_request, process_view, process_response
  of the ten middleware ozweb uses) through its own `sync_to_async`: about fifteen thread
  round trips per request. Every view and middleware here is sync (the async parts, the model
  gateway and the agent API, answer before Django does), so the chain runs as Django's sync
  `get_response`, in one call. An async view still works (Django runs it with async_to_sync).
* One hop, not three: Django also sends request_started through `asend` (its sync receivers
  on a hop of their own) and closes the response (request_finished) on another after sending
  it. Here both run in the same hop as the view; a response that is not streamed is closed
  before its bytes go out (it holds nothing the sending needs), a streamed one after, as
  Django does. `handle` is Django 5.2's own otherwise (pinned: Django<5.3).
* The request's thread is reused. Django gives each request a ThreadSensitiveContext with a
  thread of its own, started and torn down per request, with a fresh set of per-thread
  database connection objects. Here each request gets a one-thread executor from a pool of
  idle ones: still one thread per request at a time, as Django's thread-sensitive code and
  per-thread connections expect, but no thread start per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

# Idle request threads kept; a burst of more concurrent requests starts (and later drops)
# threads as Django would.
IDLE_THREADS = 32


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        respond = sync_to_async(self._respond, thread_sensitive=True)

        async def process_request() -> HttpResponseBase:
            response = await respond(scope, body_file)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away meanwhile
                await self.send_response(response, send)
            return response

        # As Django's: a disconnect while the view runs ends the wait for it.
        processing = asyncio.create_task(process_request())
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            processing,
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = processing.result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=True)()
        body_file.close()

    def _respond(self, scope: Any, body_file: IO[bytes]) -> HttpResponseBase:
        """request_started, the request, the middleware chain and the view, and the close of a
        response that is not streamed: on the request's thread, in one go."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            response = error_response
        else:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # refuses it, as Django does
            return
        executor = self._idle.pop() if self._idle else self._new_executor()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            # Back to the pool once its thread is free: a request whose client went away
            # can return before the view that it was running has finished.
            executor.submit(_nothing).add_done_callback(lambda _: self._release(executor))

    @staticmethod
    def _new_executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")

    def _release(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < IDLE_THREADS:
            self._idle.append(executor)  # list.append is atomic: this runs on that thread
        else:
            executor.shutdown(wait=False)


def _nothing() -> None:
    return None


def get_asgi_application() -> OneHopASGIHandler:
    """django.core.asgi.get_asgi_application, with this handler."""
    django.setup(set_prefix=False)
    return OneHopASGIHandler()
