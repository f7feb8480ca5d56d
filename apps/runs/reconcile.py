"""The reconciler: no run stays `running` forever, no message waits for nothing.

- A started run whose worker stopped sending heartbeats is taken over: re-attached to its
  still-running container (found by its labels), or failed with the reason.
- A queued run nobody picked up (its dispatch was lost) is dispatched again.
- Pending deliveries whose retry time has come are dispatched again.

Celery beat runs it in scaled mode (`runs.reconcile`); the embedded mode runs a
`ReconcilerThread`, started by the server's runtime (ozweb/runtime.py).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from apps.runs.dispatch import dispatch
from apps.runs.executor import RunExecution, worker_name
from apps.runs.models import Run, RunStatus
from apps.runs.routing import deliveries_dispatch
from apps.runs.sandboxes import get_sandbox
from apps.runs.sandboxes.base import SandboxProcess
from apps.runs.transitions import run_set_worker, run_take_over, run_transition
from apps.threads.models import Delivery

logger = logging.getLogger(__name__)


def reconcile() -> dict[str, int]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OZWEB_RUN_STALE_SECONDS)
    counts = {"reattached": 0, "failed": 0, "redispatched": 0, "deliveries": 0}

    for run in Run.objects.orphaned(stale=stale).select_related("agent", "thread", "team"):
        # Take it over with a guarded update, so two reconcilers never both do.
        if not run_take_over(run=run, seen_heartbeat=run.heartbeat_at):
            continue
        if _reattach(run):
            counts["reattached"] += 1
        else:
            run_transition(
                run=run,
                from_statuses=[RunStatus.STARTING, RunStatus.RUNNING],
                to=RunStatus.FAILED,
                error="The worker holding this run stopped, and its process is gone.",
            )
            counts["failed"] += 1

    for run_id in Run.objects.unclaimed(stale=stale).values_list("pk", flat=True):
        dispatch(run_id)
        counts["redispatched"] += 1

    overdue = Delivery.objects.overdue(now=now, stale=stale)
    for agent_id in list(overdue.values_list("agent_id", flat=True).distinct()):
        deliveries_dispatch(agent_id=agent_id)
        counts["deliveries"] += 1
    if any(counts.values()):
        logger.info("reconciled: %s", counts)
    return counts


def _reattach(run: Run) -> bool:
    if run.sandbox != "docker":
        return False  # a local process dies with its worker
    try:
        sandbox = get_sandbox()
        process = (
            sandbox.find(run.pk, skip_stdout_lines=run.stdout_lines)
            if sandbox.kind == "docker"
            else None
        )
    except Exception:
        logger.exception("run %s: looking for its container failed", run.pk)
        return False
    if process is None:
        return False
    run_set_worker(run=run, worker=worker_name())
    threading.Thread(
        target=_hold, args=(RunExecution(run, sandbox), process), daemon=True, name=f"run-{run.pk}"
    ).start()
    return True


def _hold(execution: RunExecution, process: SandboxProcess) -> None:
    close_old_connections()
    try:
        execution.attach(process)
    finally:
        close_old_connections()


class ReconcilerThread(threading.Thread):
    """The embedded mode's stand-in for Celery beat: reconcile every `interval` seconds."""

    def __init__(self, interval: float = 15.0) -> None:
        super().__init__(name="ozweb-reconciler", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                reconcile()
            except Exception:
                logger.exception("reconcile failed")
            finally:
                # Hold no connection between rounds (it would pin the database open).
                connections.close_all()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout)
