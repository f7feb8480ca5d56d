"""Celery tasks: thin and named; beat sends `automations.tick` (ozweb/settings.py)."""

from __future__ import annotations

from celery import shared_task

from apps.automations.firing import schedules_tick

TICK_TASK = "automations.tick"


@shared_task(name=TICK_TASK, ignore_result=True)
def tick_task() -> dict[str, int]:
    # Safe to run anywhere, any number of times: each due time is claimed once (firing.py).
    result = schedules_tick()
    return {
        "fired": len(result.fired),
        "skipped": len(result.skipped),
        "failed": len(result.failed),
        "lost": result.lost,
    }
