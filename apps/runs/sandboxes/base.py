"""Where a run's harness process lives: a Docker container, or (no engine) a local subprocess.

The executor only talks to these two protocols, so both kinds behave the same to it: start a
process from a `SandboxSpec`, read its stdout line by line, write to its stdin, kill it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# The harness image's layout, defined once by its build tool (re-exported for the executor).
from harness_image.constants import CONTAINER_HOME as CONTAINER_HOME
from harness_image.constants import CONTAINER_WORKSPACE as CONTAINER_WORKSPACE

LABEL_RUN = "dev.ozweb.run"
LABEL_AGENT = "dev.ozweb.agent"
LABEL_TEAM = "dev.ozweb.team"
LABEL_INSTANCE = "dev.ozweb.instance"
# The egress allowlist of a run's container (comma-joined), so a takeover serves it again.
LABEL_EGRESS = "dev.ozweb.egress"


class SandboxError(RuntimeError):
    """The sandbox can not start the run as hardened as it must (the run fails with this)."""


@dataclass(frozen=True)
class SandboxSpec:
    run_id: int
    image: str
    argv: list[str]
    # The process environment, secrets included (the sandbox never logs it).
    env: dict[str, str]
    # Host directories mounted at /workspace and at the agent's $HOME (sessions live there).
    workspace: Path
    home: Path
    # Files written under home before start, keyed by path relative to home.
    home_files: dict[str, str] = field(default_factory=dict)
    # Shell commands run in /workspace before the harness starts (same container).
    setup_commands: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    memory_bytes: int = 2 * 1024**3
    nano_cpus: int = 2_000_000_000
    pids_limit: int = 512
    # None (the default): the container reaches ozweb alone, through the worker's relay
    # sockets (--network none, see relay.py). A name (OZWEB_SANDBOX_NETWORK, e.g. "host" in
    # tests that point a harness at a server on the host) joins that network instead.
    network: str | None = None
    # Allowlisted HTTPS egress through the worker's proxy (None: no egress); network None only.
    egress_domains: tuple[str, ...] | None = None
    # Called (from the relay's thread) with {"host", "port", "allowed", "reason"} per egress
    # connection.
    on_egress: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)
    # The size of the container's tmpfs /tmp (it counts against the memory limit).
    tmp_bytes: int = 1024**3


class SandboxProcess(Protocol):
    """A started harness process."""

    @property
    def container_id(self) -> str: ...

    def stdout_lines(self) -> Iterator[str]:
        """Lines of stdout as they come (decoded, newline stripped); ends at EOF."""
        ...

    def stderr_tail(self) -> str:
        """The last few KiB of stderr."""
        ...

    def write(self, data: bytes) -> None:
        """Write to stdin (raises OSError once stdin is closed or the process is gone)."""
        ...

    def close_stdin(self) -> None: ...

    def kill(self) -> None:
        """Stop the process now (SIGKILL); safe to call more than once."""
        ...

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if it is still running after `timeout` seconds."""
        ...

    def cleanup(self) -> None:
        """Release what the process held (remove the container); after wait()."""
        ...


class Sandbox(Protocol):
    kind: str  # "docker" or "local"
    isolated: bool  # False for the local subprocess sandbox: shown as unsandboxed

    def start(self, spec: SandboxSpec) -> SandboxProcess: ...

    def find(self, run_id: int, skip_stdout_lines: int = 0) -> SandboxProcess | None:
        """Take over the process of a run whose worker died (found by its labels), if it
        still exists, replaying its stdout after the first `skip_stdout_lines` lines."""
        ...
