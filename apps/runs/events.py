"""Realtime events for runs: the run page listens on `run-<id>`; the executor holding a run
listens for its wake-ups on `run-wake-<id>` (when they cross processes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string

if TYPE_CHECKING:
    from apps.runs.models import Run


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def run_payload(run: Run) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "agent": run.agent_id,
        "thread": run.thread_id,
        "parent": run.parent_id,
        "session_id": run.session_id or None,
        "exit_code": run.exit_code,
        "error": run.error,
        "usage": run.usage,
    }


def run_changed_event(run: Run) -> dict[str, Any]:
    return {
        "type": "run.changed",
        "run": run_payload(run),
        "html": render_to_string("runs/run_detail.html#run_status", {"run": run, "oob": True}),
    }


def run_wake_group(run_id: int) -> str:
    return f"run-wake-{run_id}"


def run_wake_event() -> dict[str, Any]:
    return {"type": "run.wake"}
