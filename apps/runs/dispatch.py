"""Sending a queued run to a worker: Celery in scaled mode, a thread pool when embedded."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def dispatch_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: dispatch(run_id))


def dispatch(run_id: int) -> None:
    mode = settings.OZWEB_RUN_DISPATCH
    if mode == "celery":
        from apps.runs.tasks import execute_run_task

        execute_run_task.delay(run_id)
    elif mode == "inprocess":
        _in_process_pool().submit(_execute_in_thread, run_id, _server_loop())
    # "manual": the caller (a test, a script) runs execute_run itself.


def _in_process_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.OZWEB_INPROCESS_WORKERS, thread_name_prefix="ozweb-run"
            )
        return _pool


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's event loop, if this thread runs sync code for it (a request, or an
    executor that one started)."""
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    return getattr(local, "main_event_loop", None)


def _execute_in_thread(run_id: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
    from apps.runs.executor import execute_run

    # The executor's broadcasts (async_to_sync(layer.group_send)) must run on the server's
    # loop. With the in-memory channel layer, a group_send on a new loop in this thread puts
    # events in the consumers' asyncio queues without waking the server's loop: viewers got a
    # run's output only at its next unrelated wake-up, up to ~1 s late (bench/runs.py).
    # asgiref's async_to_sync uses this thread-local to find the loop, as in request threads.
    local = SyncToAsync.threadlocal
    if loop is not None and not loop.is_closed():
        local.main_event_loop, local.main_event_loop_pid = loop, os.getpid()
    close_old_connections()
    try:
        execute_run(run_id)
    except Exception:
        logger.exception("run %s crashed its in-process worker", run_id)
    finally:
        close_old_connections()
        local.__dict__.pop("main_event_loop", None)
        local.__dict__.pop("main_event_loop_pid", None)
