"""What a server process runs beside its requests, started and stopped in one place.

Importing ozweb.asgi starts nothing. The server's `Runtime` starts when the server does: on
the ASGI lifespan startup event (uvicorn), or, since daphne sends no lifespan events, with the
first connection the application sees; it stops on lifespan shutdown or when the process
exits. Tests create their own and stop it.
"""

from __future__ import annotations

import atexit
import gc
import logging
import threading
from typing import Any

from django.conf import settings

from apps.automations.firing import SchedulerThread
from apps.runs.reconcile import ReconcilerThread

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


class Runtime:
    def __init__(self, *, reconcile: bool | None = None, freeze_gc: bool = True) -> None:
        self.reconcile = reconcile  # None: when runs are dispatched in process (see start)
        self.freeze_gc = freeze_gc
        self.reconciler: ReconcilerThread | None = None
        self.scheduler: SchedulerThread | None = None  # with the reconciler: no beat here
        self.started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.started:
                return
            self.started = True
            if self.reconcile is None:
                # Embedded mode has no Celery beat: the web process reconciles runs itself.
                self.reconcile = settings.OZWEB_RUN_DISPATCH == "inprocess"
            if self.reconcile:
                self.reconciler = ReconcilerThread(interval=settings.OZWEB_RECONCILE_SECONDS)
                self.reconciler.start()
                self.scheduler = SchedulerThread(interval=settings.OZWEB_SCHEDULE_TICK_SECONDS)
                self.scheduler.start()
            if self.freeze_gc:
                # What is loaded by now lives as long as the process: keep it out of the
                # garbage collector's full passes, which otherwise stopped every thread for
                # 50-150 ms at a time, several times a minute under load (bench/messaging.py).
                gc.collect()
                gc.freeze()
        atexit.register(self.stop)
        logger.info("runtime started (reconciler: %s)", "on" if self.reconcile else "off")

    def stop(self) -> None:
        with self._lock:
            if not self.started:
                return
            self.started = False
            if self.reconciler is not None:
                self.reconciler.stop()
                self.reconciler = None
            if self.scheduler is not None:
                self.scheduler.stop()
                self.scheduler = None
            if self.freeze_gc:
                gc.unfreeze()
        atexit.unregister(self.stop)


class ServerApplication:
    """The ASGI application of a server process: `inner` for requests, and `runtime` run for
    as long as the server runs."""

    def __init__(self, inner: Any, runtime: Runtime | None) -> None:
        self.inner = inner
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self.runtime is not None and not self.runtime.started:
            self.runtime.start()  # daphne: no lifespan events, so the first connection
        await self.inner(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.runtime is not None:
                    self.runtime.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.runtime is not None:
                    self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
