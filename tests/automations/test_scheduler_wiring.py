"""Who runs the tick: Celery beat in scaled mode, the server's runtime when embedded."""

from __future__ import annotations

from django.conf import settings

from apps.automations.tasks import TICK_TASK, tick_task
from ozweb.celery import app
from ozweb.runtime import Runtime


def test_beat_sends_the_tick_task_which_the_workers_have():
    entry = settings.CELERY_BEAT_SCHEDULE[TICK_TASK]
    assert entry == {"task": TICK_TASK, "schedule": settings.OZWEB_SCHEDULE_TICK_SECONDS}
    app.loader.import_default_modules()
    assert app.tasks[TICK_TASK].name == tick_task.name == TICK_TASK


def test_the_embedded_runtime_runs_the_scheduler_and_scaled_mode_leaves_it_to_beat(settings):
    settings.OZWEB_RUN_DISPATCH = "inprocess"
    runtime = Runtime(freeze_gc=False)
    runtime.start()
    try:
        assert runtime.scheduler is not None and runtime.scheduler.is_alive()
        scheduler = runtime.scheduler
    finally:
        runtime.stop()
    assert runtime.scheduler is None and not scheduler.is_alive()

    settings.OZWEB_RUN_DISPATCH = "celery"
    scaled = Runtime(freeze_gc=False)
    scaled.start()
    try:
        assert scaled.scheduler is None
    finally:
        scaled.stop()
