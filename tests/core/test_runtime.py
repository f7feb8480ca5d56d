"""The server's runtime: nothing starts at import; it starts with the server and stops."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import pytest
from asgiref.testing import ApplicationCommunicator

from ozweb.runtime import Runtime, ServerApplication


def test_importing_the_asgi_application_starts_no_thread_and_freezes_nothing():
    # A fresh interpreter: this test process has imported the application long ago.
    code = (
        "import gc, threading, django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'ozweb.settings')\n"
        "before = {t.name for t in threading.enumerate()}\n"
        "import ozweb.asgi\n"
        "after = {t.name for t in threading.enumerate()}\n"
        "print(sorted(after - before), gc.get_freeze_count())\n"
    )
    env = {"OZWEB_RUN_DISPATCH": "inprocess", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[] 0"


def _reconciler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ozweb-reconciler"]


def test_a_runtime_runs_the_embedded_reconciler_until_it_is_stopped(settings):
    settings.OZWEB_RUN_DISPATCH = "inprocess"
    runtime = Runtime(freeze_gc=False)
    runtime.start()
    try:
        assert runtime.reconciler is not None and runtime.reconciler.is_alive()
        runtime.start()  # idempotent
        assert len(_reconciler_threads()) == 1
    finally:
        runtime.stop()
    assert _reconciler_threads() == []


def test_scaled_mode_leaves_reconciling_to_celery_beat(settings):
    settings.OZWEB_RUN_DISPATCH = "celery"
    runtime = Runtime(freeze_gc=False)
    runtime.start()
    try:
        assert runtime.reconciler is None
    finally:
        runtime.stop()


def test_a_runtime_freezes_start_up_objects_and_unfreezes_them_when_stopped(settings):
    settings.OZWEB_RUN_DISPATCH = "manual"
    runtime = Runtime()
    runtime.start()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        runtime.stop()
    assert gc.get_freeze_count() == 0


async def _lifespan(app: ServerApplication) -> list[dict]:
    communicator = ApplicationCommunicator(app, {"type": "lifespan"})
    await communicator.send_input({"type": "lifespan.startup"})
    started = await communicator.receive_output(timeout=2)
    assert app.runtime is not None and app.runtime.started
    await communicator.send_input({"type": "lifespan.shutdown"})
    stopped = await communicator.receive_output(timeout=2)
    await communicator.wait(timeout=2)
    return [started, stopped]


async def test_lifespan_events_start_and_stop_the_runtime(settings):
    settings.OZWEB_RUN_DISPATCH = "manual"
    app = ServerApplication(inner=None, runtime=Runtime(freeze_gc=False))

    messages = await _lifespan(app)

    assert [m["type"] for m in messages] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert not app.runtime.started


@pytest.mark.django_db
async def test_without_lifespan_events_the_first_request_starts_the_runtime(settings):
    """daphne sends no lifespan events."""
    settings.OZWEB_RUN_DISPATCH = "manual"
    seen: list[str] = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    runtime = Runtime(freeze_gc=False)
    app = ServerApplication(inner=inner, runtime=runtime)
    try:
        await app({"type": "http", "path": "/healthz"}, None, None)
        assert runtime.started and seen == ["http"]
    finally:
        runtime.stop()
