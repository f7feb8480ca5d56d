"""Sending a queued run to a worker: Celery in scaled mode, a thread pool when embedded."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, transaction

from apps.runs.executor import execute_run

logger = logging.getLogger(__name__)

# The Celery task that holds a run (apps/runs/tasks.py), sent by name: the workers have it.
EXECUTE_TASK = "runs.execute"

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def dispatch_on_commit(run_id: int) -> None:
    transaction.on_commit(lambda: dispatch(run_id))


def dispatch(run_id: int) -> None:
    mode = settings.OZWEB_RUN_DISPATCH
    if mode == "celery":
        current_app.send_task(EXECUTE_TASK, args=[run_id])
    elif mode == "inprocess":
        _in_process_pool().submit(_execute_in_thread, run_id)
    # "manual": the caller (a test, a script) runs execute_run itself.


def _in_process_pool() -> ThreadPoolExecutor:
    """The embedded mode's run workers, made when the first run is dispatched."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.OZWEB_INPROCESS_WORKERS, thread_name_prefix="ozweb-run"
            )
        return _pool


def _execute_in_thread(run_id: int) -> None:
    close_old_connections()
    try:
        execute_run(run_id)
    except Exception:
        logger.exception("run %s crashed its in-process worker", run_id)
    finally:
        close_old_connections()
