"""The ASGI handler that serves Django's views: Django's own, with two of its per-request
costs taken out (bench/writes.py, py-spy under daphne).

* The middleware chain and the view run as one hop to the request's thread. Django's
  ASGIHandler runs each sync middleware hook (process_request, process_view, process_response
  of the ten middleware ozweb uses) through its own `sync_to_async`: about fifteen thread
  round trips per request. Every view and middleware here is sync (the async parts, the model
  gateway and the agent API, answer before Django does), so the chain runs as Django's sync
  `get_response`, in one call. An async view still works (Django runs it with async_to_sync).
* The request's thread is reused. Django gives each request a ThreadSensitiveContext with a
  thread of its own, started and torn down per request, with a fresh set of per-thread
  database connection objects. Here each request gets a one-thread executor from a pool of
  idle ones: still one thread per request at a time, as Django's thread-sensitive code and
  per-thread connections expect, but no thread start per request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

# Idle request threads kept; a burst of more concurrent requests starts (and later drops)
# threads as Django would.
IDLE_THREADS = 32


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

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
