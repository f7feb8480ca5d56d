"""Celery tasks: thin, named, idempotent; they call the executor and the reconciler."""

from __future__ import annotations

from celery import shared_task

from apps.runs.dispatch import EXECUTE_TASK
from apps.runs.executor import execute_run
from apps.runs.reconcile import reconcile


@shared_task(name=EXECUTE_TASK, acks_late=True, reject_on_worker_lost=True)
def execute_run_task(run_id: int) -> None:
    # Idempotent: a run another worker already claimed is left alone.
    execute_run(run_id)


@shared_task(name="runs.reconcile")
def reconcile_task() -> dict[str, int]:
    return reconcile()
