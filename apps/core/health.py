"""What /healthz reports: each dependency checked for real, with how long it took."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from celery import current_app
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from apps.core.registry import health_checks

CHECK_TIMEOUT_SECONDS = 3.0


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


async def _channel_layer() -> dict[str, Any]:
    """A round trip through the layer: send to a fresh channel and read it back."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured")
    # Every concrete layer takes a prefix; channels' base class (and so its stub) does not.
    channel = await layer.new_channel(prefix="healthz.")  # type: ignore[call-arg]
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await layer.receive(channel)
    return {"ok": message.get("token") == token, "backend": type(layer).__name__}


def _worker() -> dict[str, Any]:
    mode = settings.OZWEB_RUN_DISPATCH
    if mode != "celery":
        return {"ok": True, "mode": mode}
    replies = current_app.control.ping(timeout=1.0) or []
    workers = sorted(name for reply in replies for name in reply)
    return {"ok": bool(workers), "mode": mode, "workers": workers}


async def _timed(name: str, check: Any) -> tuple[str, dict[str, Any]]:
    start = time.perf_counter()
    try:
        result = await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # a health check reports failures, it does not raise them
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return name, result


async def report() -> dict[str, Any]:
    checks = [
        _timed("database", sync_to_async(_database, thread_sensitive=True)),
        _timed("channel_layer", _channel_layer),
        _timed("worker", sync_to_async(_worker, thread_sensitive=False)),
        # Checks the higher apps register (e.g. runs: "docker").
        *(
            _timed(name, sync_to_async(check, thread_sensitive=False))
            for name, check in health_checks().items()
        ),
    ]
    results = dict(await asyncio.gather(*checks))
    return {
        # This process can serve when its database and channel layer work; workers and Docker
        # are reported for operators but do not take the web node out of a load balancer.
        "ok": results["database"]["ok"] and results["channel_layer"]["ok"],
        "mode": "scaled" if settings.REDIS_URL else "embedded",
        **results,
    }
