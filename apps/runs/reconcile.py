"""The reconciler: no run stays `running` forever, no message waits for nothing.

- A started run whose worker stopped sending heartbeats is taken over: re-attached to its
  still-running container (found by its labels), or failed with the reason.
- A queued run nobody picked up (its dispatch was lost) is dispatched again.
- Pending deliveries whose retry time has come are dispatched again.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q
from django.utils import timezone

from apps.runs import services
from apps.runs.dispatch import dispatch
from apps.runs.models import Run, RunStatus
from apps.threads.models import Delivery, DeliveryState

logger = logging.getLogger(__name__)


def reconcile() -> dict[str, int]:
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OZWEB_RUN_STALE_SECONDS)
    counts = {"reattached": 0, "failed": 0, "redispatched": 0, "deliveries": 0}

    orphans = Run.objects.filter(status__in=[RunStatus.STARTING, RunStatus.RUNNING]).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, updated_at__lt=stale)
    )
    for run in orphans.select_related("agent", "thread", "team"):
        # Take it over with a guarded update, so two reconcilers never both do.
        if not Run.objects.filter(
            pk=run.pk, heartbeat_at=run.heartbeat_at, status=run.status
        ).update(heartbeat_at=now):
            continue
        if _reattach(run):
            counts["reattached"] += 1
        else:
            services.run_transition(
                run=run,
                from_statuses=[RunStatus.STARTING, RunStatus.RUNNING],
                to=RunStatus.FAILED,
                error="The worker holding this run stopped, and its process is gone.",
            )
            counts["failed"] += 1

    for run_id in Run.objects.filter(status=RunStatus.QUEUED, created_at__lt=stale).values_list(
        "pk", flat=True
    ):
        dispatch(run_id)
        counts["redispatched"] += 1

    due = (
        Delivery.objects.filter(state=DeliveryState.PENDING)
        .filter(Q(run__isnull=True) | Q(run__status=RunStatus.FAILED))
        .filter(Q(retry_at__isnull=True, created_at__lt=stale) | Q(retry_at__lte=now))
        .values_list("agent_id", flat=True)
        .distinct()
    )
    for agent_id in list(due):
        services.deliveries_dispatch(agent_id=agent_id)
        counts["deliveries"] += 1
    if any(counts.values()):
        logger.info("reconciled: %s", counts)
    return counts


def _reattach(run: Run) -> bool:
    if run.sandbox != "docker":
        return False  # a local process dies with its worker
    from apps.runs.executor import RunExecution
    from apps.runs.sandboxes import get_sandbox

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
    Run.objects.filter(pk=run.pk).update(worker=_worker())
    threading.Thread(
        target=_hold, args=(RunExecution(run, sandbox), process), daemon=True, name=f"run-{run.pk}"
    ).start()
    return True


def _hold(execution: object, process: object) -> None:
    close_old_connections()
    try:
        execution.attach(process)  # type: ignore[attr-defined]
    finally:
        close_old_connections()


def _worker() -> str:
    from apps.runs.executor import worker_name

    return worker_name()


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
