"""The agent doors' thread pool: the verbs are sync Django code, run here by the doors (REST
verbs and MCP) on long-lived threads that keep their database connection between calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async

from apps.core.db import connections_done

# Created on demand. No call holds one for long: a delegate(wait=true) waits on the event
# loop (apps.agentapi.waits), not here.
VERB_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="agentapi")


def in_pool(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """`fn` as a coroutine function run on the verb threads, which keep their connection."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections_done()

    return sync_to_async(call, thread_sensitive=False, executor=VERB_THREADS)
