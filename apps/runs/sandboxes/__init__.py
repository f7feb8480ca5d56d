"""Where runs execute: `get_sandbox()` picks Docker when an engine answers, else a local
subprocess (unsandboxed). `OZWEB_SANDBOX` (setting or environment variable) forces a kind:
``auto`` (default), ``docker`` or ``local``."""

from __future__ import annotations

import logging
import os

from .base import Sandbox, SandboxProcess, SandboxSpec
from .docker import DockerSandbox
from .local import LocalSandbox

__all__ = [
    "DockerSandbox",
    "LocalSandbox",
    "Sandbox",
    "SandboxProcess",
    "SandboxSpec",
    "docker_health",
    "get_sandbox",
    "hardening_health",
    "sandbox_network",
    "sandbox_ozweb_url",
]

logger = logging.getLogger(__name__)
KINDS = ("auto", "docker", "local")


def sandbox_kind() -> str:
    """The configured kind: the OZWEB_SANDBOX setting, else the environment, else "auto"."""
    from django.conf import settings

    value = getattr(settings, "OZWEB_SANDBOX", None) if settings.configured else None
    value = (value or os.environ.get("OZWEB_SANDBOX") or "auto").strip().lower()
    if value not in KINDS:
        raise ValueError(f"OZWEB_SANDBOX must be one of {', '.join(KINDS)}, not {value!r}")
    return value


def get_sandbox() -> Sandbox:
    kind = sandbox_kind()
    if kind == "docker":
        return DockerSandbox()
    if kind == "local":
        return LocalSandbox()
    if DockerSandbox.available():
        return DockerSandbox()
    logger.warning("no Docker engine answers: runs execute as UNSANDBOXED local processes")
    return LocalSandbox()


def docker_health() -> dict[str, object]:
    """For /healthz. Docker is optional in embedded mode: without it runs are local and
    unsandboxed."""
    kind = sandbox_kind()
    available = DockerSandbox.available()
    sandbox = "docker" if kind == "docker" or (kind == "auto" and available) else "local"
    return {"ok": available or sandbox == "local", "available": available, "sandbox": sandbox}


def sandbox_network() -> str | None:
    """The Docker network sandboxes join instead of the default, or None.

    None, the default: a container has ``--network none`` and reaches ozweb's agent API and
    gateway alone, through its worker's relay sockets (relay.py). OZWEB_SANDBOX_NETWORK names a
    network for special setups, e.g. ``host`` in tests whose harness talks straight to a server
    on the host's loopback: that container then reaches whatever the network reaches.
    """
    named = os.environ.get("OZWEB_SANDBOX_NETWORK", "").strip()
    return named or None


def sandbox_ozweb_url(sandbox: Sandbox) -> str:
    """ozweb's agent API and gateway as code in `sandbox` reaches them (its OZWEB_URL)."""
    from django.conf import settings

    if sandbox.kind == "docker" and sandbox_network() is None:
        from .relay import container_endpoint

        return container_endpoint(settings.OZWEB_AGENT_API_URL).url
    return str(settings.OZWEB_AGENT_API_URL)


_hardening_cache: tuple[float, dict[str, object]] | None = None
HARDENING_CACHE_SECONDS = 60.0


def hardening_health() -> dict[str, object]:
    """For /healthz and the dashboard: what keeps runs from being sandboxed as documented
    (cached for a minute; it asks the engine)."""
    import time

    global _hardening_cache
    now = time.monotonic()
    if _hardening_cache is not None and now - _hardening_cache[0] < HARDENING_CACHE_SECONDS:
        return _hardening_cache[1]
    kind = sandbox_kind()
    result: dict[str, object]
    if kind == "local" or (kind == "auto" and not DockerSandbox.available()):
        result = {
            "ok": False,
            "problems": ["no Docker engine: runs execute as unsandboxed local processes"],
            "notes": [],
        }
    else:
        try:
            found = DockerSandbox().hardening_problems()
        except Exception as exc:  # an engine that does not answer is the docker check's news
            found = {"problems": [f"the Docker engine did not answer: {exc}"[:300]], "notes": []}
        result = {"ok": not found["problems"], **found}
    _hardening_cache = (now, result)
    return result
