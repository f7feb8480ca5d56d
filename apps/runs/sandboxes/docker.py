"""The Docker sandbox: the harness CLI is the main process of a fresh, hardened container.

The engine is whatever `docker.from_env()` finds (DOCKER_HOST, else the local socket). The
container's stdin/stdout are the wire: we attach to it *before* starting it, so no output is
missed, and split docker's multiplexed stream (8-byte frame headers) into stdout lines and a
bounded stderr tail on a reader thread.

The container is created with StdinOnce (as `docker run -i` does): half-closing our attach
connection is what makes the engine close the harness's stdin (EOF). The flip side is that
when the attached worker goes away, the harness sees EOF on stdin too; a re-attached process
(`find()`) can still be read, killed and waited for, but its stdin is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import requests
from django.conf import settings
from docker.errors import APIError, DockerException, NotFound

from harness_image.constants import AGENT_GID, AGENT_UID

from .base import (
    CONTAINER_HOME,
    CONTAINER_WORKSPACE,
    LABEL_INSTANCE,
    LABEL_RUN,
    SandboxSpec,
)
from .local import (
    STDERR_TAIL_BYTES,
    LineStream,
    StderrTail,
    start_reader,
    with_setup,
    write_home_files,
)

logger = logging.getLogger(__name__)

ATTACH_PARAMS = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
_HEADER = struct.Struct(">BxxxL")
_STREAM_STDOUT, _STREAM_STDERR = 1, 2
_READ_SIZE = 64 * 1024


class FrameDemuxer:
    """Splits docker's multiplexed attach stream (non-tty) into stdout and stderr bytes."""

    def __init__(self, stdout: LineStream, stderr: StderrTail) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        if not data:
            self._stdout.end()
            return
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            if stream == _STREAM_STDOUT:
                self._stdout.feed(payload)
            elif stream == _STREAM_STDERR:
                self._stderr.feed(payload)


def _raw_socket(attached: Any) -> Any:
    """The socket under what `attach_socket` returns (a SocketIO for unix/tcp engines)."""
    return getattr(attached, "_sock", None) or attached


class DockerProcess:
    def __init__(self, client: docker.DockerClient, container_id: str, attached: Any) -> None:
        self._client = client
        self._id = container_id
        self._attached = attached  # keeps the SocketIO (and with it the socket) alive
        self._sock = _raw_socket(attached)
        if hasattr(self._sock, "settimeout"):
            # The HTTP client's request timeout must not end a quiet stream.
            self._sock.settimeout(None)
        self._stdout = LineStream()
        self._stderr = StderrTail()
        self._stdin_lock = threading.Lock()
        self._stdin_closed = False
        self._exit_code: int | None = None
        demuxer = FrameDemuxer(self._stdout, self._stderr)
        self._reader = start_reader(
            f"sandbox-docker-{container_id[:12]}", lambda: self._sock.recv(_READ_SIZE), demuxer.feed
        )

    @property
    def container_id(self) -> str:
        return self._id

    def stdout_lines(self) -> Iterator[str]:
        return self._stdout.lines()

    def stderr_tail(self) -> str:
        return self._stderr.text()

    def write(self, data: bytes) -> None:
        with self._stdin_lock:
            if self._stdin_closed:
                raise BrokenPipeError("stdin is closed")
            if self._stdout.ended:
                raise BrokenPipeError("the container's process has exited")
            self._sock.sendall(data)

    def close_stdin(self) -> None:
        with self._stdin_lock:
            if self._stdin_closed:
                return
            self._stdin_closed = True
            with contextlib.suppress(OSError):  # already disconnected
                self._sock.shutdown(socket.SHUT_WR)

    def kill(self) -> None:
        try:
            self._client.api.kill(self._id)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # not running (any more)
                raise

    def wait(self, timeout: float | None = None) -> int | None:
        if self._exit_code is not None:
            return self._exit_code
        if timeout is not None and timeout <= 0:
            code = self._exit_code_if_exited()
        else:
            try:
                # docker-py hands the timeout to requests, which takes a float; the stub says int.
                waited = self._client.api.wait(self._id, timeout=timeout)  # type: ignore[arg-type]
                code = int(waited["StatusCode"])
            except requests.exceptions.RequestException:
                # Timed out (a ReadTimeout, or a ConnectionError wrapping one).
                code = self._exit_code_if_exited()
        self._exit_code = code  # remembered: the container may be removed afterwards
        return code

    def _exit_code_if_exited(self) -> int | None:
        state = self._client.api.inspect_container(self._id)["State"]
        if state.get("Running") or state.get("Status") in ("created", "restarting"):
            return None
        return int(state["ExitCode"])

    def cleanup(self) -> None:
        try:
            self._client.api.remove_container(self._id, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise
        # shutdown() first: close() alone would not wake the reader blocked in recv().
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        self._reader.join(timeout=2)


class ReplayedProcess(DockerProcess):
    """A container taken over after its worker died: stdout replayed from the engine's log."""

    def __init__(self, client: docker.DockerClient, container_id: str, skip: int) -> None:
        self._client = client
        self._id = container_id
        self._stdout = LineStream()
        self._exit_code: int | None = None
        self._stdin_closed = True
        self._stdin_lock = threading.Lock()
        self._skip = skip
        self._log = client.api.logs(
            container_id, stdout=True, stderr=False, stream=True, follow=True
        )
        self._reader = threading.Thread(
            target=self._replay, name=f"sandbox-replay-{container_id[:12]}", daemon=True
        )
        self._reader.start()

    def _replay(self) -> None:
        try:
            for chunk in self._log:
                self._stdout.feed(chunk)
        except (requests.exceptions.RequestException, OSError, DockerException):
            pass  # the container was removed, or the engine went away
        finally:
            self._stdout.end()

    def stdout_lines(self) -> Iterator[str]:
        for number, line in enumerate(self._stdout.lines()):
            if number >= self._skip:
                yield line

    def stderr_tail(self) -> str:
        try:
            data = self._client.api.logs(self._id, stdout=False, stderr=True, tail=200)
        except DockerException:
            return ""
        return data.decode("utf-8", errors="replace")[-STDERR_TAIL_BYTES:]

    def write(self, data: bytes) -> None:
        raise BrokenPipeError("a taken-over container's stdin is closed")

    def close_stdin(self) -> None:
        return None

    def cleanup(self) -> None:
        try:
            self._client.api.remove_container(self._id, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:
                raise
        with contextlib.suppress(Exception):
            self._log.close()
        self._reader.join(timeout=2)


class DockerSandbox:
    kind = "docker"
    isolated = True

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client or docker.from_env()
        self._unsupported_limits: set[str] | None = None

    @classmethod
    def available(cls, timeout: float = 2.0) -> bool:
        """Whether an engine answers a ping within `timeout` seconds."""
        try:
            client = docker.from_env(timeout=max(1, round(timeout)))
        except DockerException:
            return False
        try:
            return bool(client.ping())
        except (DockerException, requests.exceptions.RequestException, OSError):
            return False
        finally:
            client.close()

    def start(self, spec: SandboxSpec) -> DockerProcess:
        self._prepare_host_dirs(spec)
        argv = with_setup(spec.setup_commands, spec.argv, CONTAINER_WORKSPACE)
        limits = self._limits(spec)
        try:
            process = self._create_and_start(spec, argv, limits)
        except APIError as exc:
            if not limits or not _is_cgroup_error(exc):
                raise
            logger.warning(
                "the Docker engine refused resource limits (%s); run %s and later runs start "
                "WITHOUT memory/cpu/pids limits",
                _short(exc),
                spec.run_id,
            )
            self._unsupported_limits = {"mem_limit", "nano_cpus", "pids_limit"}
            process = self._create_and_start(spec, argv, {})
        logger.info("run %s: started container %s", spec.run_id, process.container_id[:12])
        return process

    def _create_and_start(
        self, spec: SandboxSpec, argv: list[str], limits: dict[str, int]
    ) -> DockerProcess:
        api = self._client.api
        container_id = self._create(spec, argv, limits)
        process = None
        try:
            # Attached before it starts, so not a byte of output is missed.
            attached = api.attach_socket(container_id, params=ATTACH_PARAMS)
            process = DockerProcess(self._client, container_id, attached)
            api.start(container_id)
        except BaseException:
            with contextlib.suppress(DockerException, OSError):
                if process is not None:
                    process.cleanup()
                else:
                    api.remove_container(container_id, force=True)
            raise
        return process

    def find(self, run_id: int, skip_stdout_lines: int = 0) -> ReplayedProcess | None:
        """Take over the run's container, running or exited (but not yet removed).

        Its stdout is replayed from the engine's log from the first line, less the
        `skip_stdout_lines` the previous holder already processed, then followed: nothing the
        harness printed while nobody was attached is lost. Its stdin is gone (see the module
        docstring), so the process can be read, killed and waited for, not written to.
        """
        labels = [f"{LABEL_RUN}={run_id}", f"{LABEL_INSTANCE}={settings.OZWEB_INSTANCE}"]
        containers = self._client.api.containers(all=True, filters={"label": labels})
        if not containers:
            return None
        newest = max(containers, key=lambda c: c.get("Created", 0))
        return ReplayedProcess(self._client, newest["Id"], skip_stdout_lines)

    def _create(self, spec: SandboxSpec, argv: list[str], limits: dict[str, int]) -> str:
        api = self._client.api
        host_config = api.create_host_config(
            binds={
                str(spec.workspace): {"bind": CONTAINER_WORKSPACE, "mode": "rw"},
                str(spec.home): {"bind": CONTAINER_HOME, "mode": "rw"},
            },
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network_mode=spec.network,
            # An absent limit is None, as create_host_config's defaults are.
            mem_limit=limits.get("mem_limit"),
            nano_cpus=limits.get("nano_cpus"),
            pids_limit=limits.get("pids_limit"),
        )
        created = api.create_container(
            spec.image,
            command=argv,
            entrypoint=[],
            user=f"{AGENT_UID}:{AGENT_GID}",
            # Not detached + stdin_open: the engine sets StdinOnce, so our half-close is EOF.
            detach=False,
            stdin_open=True,
            tty=False,
            working_dir=CONTAINER_WORKSPACE,
            environment={**spec.env, "HOME": CONTAINER_HOME},
            labels={
                LABEL_INSTANCE: settings.OZWEB_INSTANCE,
                **spec.labels,
                LABEL_RUN: str(spec.run_id),
            },
            name=f"ozweb-run-{spec.run_id}-{secrets.token_hex(3)}",
            host_config=host_config,
        )
        for warning in created.get("Warnings") or []:
            logger.warning("run %s: engine warning: %s", spec.run_id, warning)
        return created["Id"]

    def _limits(self, spec: SandboxSpec) -> dict[str, int]:
        """The resource limits of `spec` that this engine can enforce (logs the others once)."""
        if self._unsupported_limits is None:
            try:
                info = self._client.api.info()
            except DockerException:
                info = {}
            self._unsupported_limits = {
                name
                for name, flag in (
                    ("mem_limit", "MemoryLimit"),
                    ("nano_cpus", "CpuCfsQuota"),
                    ("pids_limit", "PidsLimit"),
                )
                if info.get(flag) is False
            }
            if self._unsupported_limits:
                logger.warning(
                    "the Docker engine can not enforce %s; containers run without them",
                    ", ".join(sorted(self._unsupported_limits)),
                )
        limits = {
            "mem_limit": spec.memory_bytes,
            "nano_cpus": spec.nano_cpus,
            "pids_limit": spec.pids_limit,
        }
        return {k: v for k, v in limits.items() if k not in self._unsupported_limits and v}

    @staticmethod
    def _prepare_host_dirs(spec: SandboxSpec) -> None:
        """Make the mounted dirs exist and be writable by the container's uid 1000."""
        as_root = os.geteuid() == 0
        for directory in (spec.workspace, spec.home):
            directory.mkdir(parents=True, exist_ok=True)
            if as_root:
                if directory.stat().st_uid != AGENT_UID:
                    # Freshly prepared by someone else (e.g. a checkout made as root): hand
                    # the whole tree over; later runs find it owned already and skip the walk.
                    _chown_tree(directory)
            elif os.geteuid() != AGENT_UID:
                directory.chmod(0o777)
        chown = (AGENT_UID, AGENT_GID) if as_root else None
        write_home_files(spec.home, spec.home_files, chown=chown)
        if not as_root and os.geteuid() != AGENT_UID:
            for relative in spec.home_files:
                _open_up(spec.home, spec.home / relative)


def _chown_tree(root: Path) -> None:
    os.chown(root, AGENT_UID, AGENT_GID)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), AGENT_UID, AGENT_GID)


def _open_up(home: Path, path: Path) -> None:
    """Without root we can not chown: make a home file and its parents writable by all."""
    path.chmod(0o666)
    parent = path.parent
    while parent != home and home in parent.parents:
        parent.chmod(0o777)
        parent = parent.parent


def _is_cgroup_error(exc: APIError) -> bool:
    text = str(exc).lower()
    return "cgroup" in text or "pids" in text or "memory" in text or "cpu" in text


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"
