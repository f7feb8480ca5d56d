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
    "sandbox_network",
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
    """The network sandboxes use.

    OZWEB_SANDBOX_NETWORK names it (``host`` in tests). Unset, a container gets the host's
    network only when ozweb's agent API is on a loopback address (OZWEB_AGENT_API_URL, the
    embedded default), since that is the only way code in it can reach the API; otherwise the
    engine's default network.
    """
    from urllib.parse import urlsplit

    from django.conf import settings

    named = os.environ.get("OZWEB_SANDBOX_NETWORK", "").strip()
    if named:
        return named
    host = urlsplit(settings.OZWEB_AGENT_API_URL).hostname or ""
    return "host" if host in ("127.0.0.1", "localhost", "::1") else None
