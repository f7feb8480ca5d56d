"""What /healthz reports: each dependency checked for real, with how long it took."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

CHECK_TIMEOUT_SECONDS = 3.0


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


async def _channel_layer() -> dict[str, Any]:
    """A round trip through the layer: send to a fresh channel and read it back."""
    layer = get_channel_layer()
    channel = await layer.new_channel(prefix="healthz.")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await layer.receive(channel)
    return {"ok": message.get("token") == token, "backend": type(layer).__name__}


def _worker() -> dict[str, Any]:
    mode = settings.OZWEB_RUN_DISPATCH
    if mode != "celery":
        return {"ok": True, "mode": mode}
    from ozweb.celery import app

    replies = app.control.ping(timeout=1.0) or []
    workers = sorted(name for reply in replies for name in reply)
    return {"ok": bool(workers), "mode": mode, "workers": workers}


def _docker() -> dict[str, Any]:
    """Docker is optional in embedded mode: without it runs are local and unsandboxed."""
    from apps.runs.sandboxes import DockerSandbox, sandbox_kind

    kind = sandbox_kind()
    available = DockerSandbox.available()
    sandbox = "docker" if kind == "docker" or (kind == "auto" and available) else "local"
    return {"ok": available or sandbox == "local", "available": available, "sandbox": sandbox}


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
        _timed("docker", sync_to_async(_docker, thread_sensitive=False)),
    ]
    results = dict(await asyncio.gather(*checks))
    return {
        # This process can serve when its database and channel layer work; workers and Docker
        # are reported for operators but do not take the web node out of a load balancer.
        "ok": results["database"]["ok"] and results["channel_layer"]["ok"],
        "mode": "scaled" if settings.REDIS_URL else "embedded",
        **results,
    }
