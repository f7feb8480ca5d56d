"""Sending a queued run to a worker: Celery in scaled mode, a thread pool when embedded."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

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
        _in_process_pool().submit(_execute_in_thread, run_id)
    # "manual": the caller (a test, a script) runs execute_run itself.


def _in_process_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.OZWEB_INPROCESS_WORKERS, thread_name_prefix="ozweb-run"
            )
        return _pool


def _execute_in_thread(run_id: int) -> None:
    from apps.runs.executor import execute_run

    close_old_connections()
    try:
        execute_run(run_id)
    except Exception:
        logger.exception("run %s crashed its in-process worker", run_id)
    finally:
        close_old_connections()
