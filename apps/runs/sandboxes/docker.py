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
from collections.abc import Iterator, Mapping
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
    LABEL_EGRESS,
    LABEL_INSTANCE,
    LABEL_RUN,
    SandboxError,
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
from .relay import CONTAINER_SOCKET_DIR, RunRelay, container_endpoint, proxy_env, relay_argv

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
    def __init__(
        self,
        client: docker.DockerClient,
        container_id: str,
        attached: Any,
        run_relay: RunRelay | None = None,
    ) -> None:
        self._client = client
        self._id = container_id
        self._relay = run_relay
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
        try:
            state = self._client.api.inspect_container(self._id)["State"]
        except requests.exceptions.ConnectionError as exc:  # stopped or restarting
            raise SandboxError(f"the Docker engine stopped answering ({_short(exc)})") from exc
        if state.get("Running") or state.get("Status") in ("created", "restarting"):
            return None
        return int(state["ExitCode"])

    def cleanup(self, *, keep_relay: bool = False) -> None:
        try:
            self._client.api.remove_container(self._id, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # removal already in progress
                raise
        if self._relay is not None and not keep_relay:
            self._relay.close()
        # shutdown() first: close() alone would not wake the reader blocked in recv().
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        self._reader.join(timeout=2)


class ReplayedProcess(DockerProcess):
    """A container taken over after its worker died: stdout replayed from the engine's log."""

    def __init__(
        self,
        client: docker.DockerClient,
        container_id: str,
        skip: int,
        run_relay: RunRelay | None = None,
    ) -> None:
        self._client = client
        self._id = container_id
        self._relay = run_relay
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

    def cleanup(self, *, keep_relay: bool = False) -> None:
        try:
            self._client.api.remove_container(self._id, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:
                raise
        if self._relay is not None and not keep_relay:
            self._relay.close()
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
        limits = self._limits(spec)  # first: a limit the engine can not enforce fails the run
        user = self._prepare_host_dirs(spec)
        argv = with_setup(spec.setup_commands, spec.argv, CONTAINER_WORKSPACE)
        run_relay = None
        if spec.network is None:
            owner = _uid_gid(user) if os.geteuid() == 0 else None
            run_relay = RunRelay.create(
                run_id=spec.run_id,
                instance=settings.OZWEB_INSTANCE,
                upstream=settings.OZWEB_AGENT_API_URL,
                owner=owner,
                egress_domains=spec.egress_domains,
                on_egress=spec.on_egress,
            )
        try:
            process = self._create_and_start(spec, argv, limits, user, run_relay)
        except APIError as exc:
            if run_relay is not None:
                run_relay.close()
            if run_relay is not None and "oz-relay" in str(exc):
                raise SandboxError(
                    f"the image {spec.image} has no oz-relay, through which a sandbox reaches "
                    "ozweb: build it FROM the harness image (docker/README.md)"
                ) from exc
            if limits and _is_cgroup_error(exc):
                raise SandboxError(
                    f"the Docker engine refused the resource limits ({_short(exc)}); runs do not "
                    "start unlimited: fix the engine's cgroups, or set the limit's "
                    "OZWEB_SANDBOX_MEMORY_BYTES / OZWEB_SANDBOX_CPUS / OZWEB_SANDBOX_PIDS to 0 "
                    "to run without it knowingly"
                ) from exc
            raise
        except BaseException:
            if run_relay is not None:
                run_relay.close()
            raise
        logger.info("run %s: started container %s", spec.run_id, process.container_id[:12])
        return process

    def _create_and_start(
        self,
        spec: SandboxSpec,
        argv: list[str],
        limits: dict[str, int],
        user: str,
        run_relay: RunRelay | None,
    ) -> DockerProcess:
        api = self._client.api
        container_id = self._create(spec, argv, limits, user, run_relay)
        process = None
        try:
            # Attached before it starts, so not a byte of output is missed.
            attached = api.attach_socket(container_id, params=ATTACH_PARAMS)
            process = DockerProcess(self._client, container_id, attached, run_relay)
            api.start(container_id)
        except BaseException:
            with contextlib.suppress(DockerException, OSError):
                if process is not None:
                    process.cleanup(keep_relay=True)
                else:
                    api.remove_container(container_id, force=True)
            raise
        return process

    def find(self, run_id: int, skip_stdout_lines: int = 0) -> ReplayedProcess | None:
        """Take over the run's container, running or exited (but not yet removed).

        Its stdout is replayed from the engine's log from the first line, less the
        `skip_stdout_lines` the previous holder already processed, then followed: nothing the
        harness printed while nobody was attached is lost. Its stdin is gone (see the module
        docstring), so the process can be read, killed and waited for, not written to. Its
        relay sockets are served again by this worker (the folder is mounted, so new sockets
        in it are what the container's oz-relay connects to).
        """
        labels = [f"{LABEL_RUN}={run_id}", f"{LABEL_INSTANCE}={settings.OZWEB_INSTANCE}"]
        containers = self._client.api.containers(all=True, filters={"label": labels})
        if not containers:
            return None
        newest = max(containers, key=lambda c: c.get("Created", 0))
        run_relay = self._reserve(run_id, newest["Id"])
        return ReplayedProcess(self._client, newest["Id"], skip_stdout_lines, run_relay)

    def _reserve(self, run_id: int, container_id: str) -> RunRelay | None:
        try:
            attrs = self._client.api.inspect_container(container_id)
        except DockerException:
            return None
        if attrs["HostConfig"].get("NetworkMode") != "none":
            return None
        if not attrs["State"].get("Running"):
            return None
        source = next(
            (m["Source"] for m in attrs["Mounts"] if m["Destination"] == CONTAINER_SOCKET_DIR), None
        )
        if source is None:
            return None
        config_labels = attrs["Config"].get("Labels") or {}
        egress = config_labels.get(LABEL_EGRESS)
        user = attrs["Config"].get("User") or f"{AGENT_UID}:{AGENT_GID}"
        return RunRelay.create(
            run_id=run_id,
            instance=settings.OZWEB_INSTANCE,
            upstream=settings.OZWEB_AGENT_API_URL,
            owner=_uid_gid(user) if os.geteuid() == 0 else None,
            egress_domains=tuple(egress.split(",")) if egress is not None else None,
            directory=Path(source),
        )

    def _create(
        self,
        spec: SandboxSpec,
        argv: list[str],
        limits: dict[str, int],
        user: str,
        run_relay: RunRelay | None,
    ) -> str:
        api = self._client.api
        binds: dict[str, Mapping[str, str]] = {
            str(spec.workspace): {"bind": CONTAINER_WORKSPACE, "mode": "rw"},
            str(spec.home): {"bind": CONTAINER_HOME, "mode": "rw"},
        }
        env = {**spec.env, "HOME": CONTAINER_HOME}
        labels = {
            LABEL_INSTANCE: settings.OZWEB_INSTANCE,
            **spec.labels,
            LABEL_RUN: str(spec.run_id),
        }
        extra_hosts = None
        if run_relay is not None:
            # The container's only way out: the worker's sockets, mounted read-only.
            binds[str(run_relay.directory)] = {"bind": CONTAINER_SOCKET_DIR, "mode": "ro"}
            endpoint = container_endpoint(settings.OZWEB_AGENT_API_URL)
            egress = spec.egress_domains is not None
            argv = relay_argv(endpoint, argv, egress=egress)
            extra_hosts = endpoint.extra_hosts or None
            if egress:
                env.update(proxy_env(endpoint))
                labels[LABEL_EGRESS] = ",".join(spec.egress_domains or ())
        host_config = api.create_host_config(
            binds=binds,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network_mode=spec.network or "none",
            extra_hosts=extra_hosts,
            # OWASP: nothing but the mounts and /tmp is writable.
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,mode=1777,size={spec.tmp_bytes}"},  # noqa: S108
            # An absent limit is None, as create_host_config's defaults are.
            mem_limit=limits.get("mem_limit"),
            nano_cpus=limits.get("nano_cpus"),
            pids_limit=limits.get("pids_limit"),
        )
        created = api.create_container(
            spec.image,
            command=argv,
            entrypoint=[],
            user=user,
            # Not detached + stdin_open: the engine sets StdinOnce, so our half-close is EOF.
            detach=False,
            stdin_open=True,
            tty=False,
            working_dir=CONTAINER_WORKSPACE,
            environment=env,
            labels=labels,
            name=f"ozweb-run-{spec.run_id}-{secrets.token_hex(3)}",
            host_config=host_config,
        )
        for warning in created.get("Warnings") or []:
            logger.warning("run %s: engine warning: %s", spec.run_id, warning)
        return created["Id"]

    def _engine_info(self) -> dict[str, Any]:
        try:
            return dict(self._client.api.info())
        except DockerException:
            return {}

    def _limits(self, spec: SandboxSpec) -> dict[str, int]:
        """The resource limits of `spec` (0 = none, asked for knowingly). One the engine says it
        can not enforce is an error: a run never starts silently unlimited."""
        if self._unsupported_limits is None:
            self._unsupported_limits = unsupported_limits(self._engine_info())
        limits = {
            "mem_limit": spec.memory_bytes,
            "nano_cpus": spec.nano_cpus,
            "pids_limit": spec.pids_limit,
        }
        refused = sorted(k for k, v in limits.items() if v and k in self._unsupported_limits)
        if refused:
            raise SandboxError(
                "the Docker engine can not enforce the "
                + ", ".join(LIMIT_NAMES[k] for k in refused)
                + " limit; runs do not start unlimited: enable the cgroup controller, or set "
                + ", ".join(f"{LIMIT_SETTINGS[k]}=0" for k in refused)
                + " to run without it knowingly"
            )
        return {k: v for k, v in limits.items() if v}

    def hardening_problems(self) -> dict[str, list[str]]:
        """What keeps this engine from running hardened sandboxes ("problems": runs fail or
        are less isolated than documented; "notes": worth knowing)."""
        from django.conf import settings

        info = self._engine_info()
        problems = []
        asked = {
            "mem_limit": settings.OZWEB_SANDBOX_MEMORY_BYTES,
            "nano_cpus": settings.OZWEB_SANDBOX_CPUS,
            "pids_limit": settings.OZWEB_SANDBOX_PIDS,
        }
        for name in sorted(unsupported_limits(info)):
            if asked[name]:
                problems.append(
                    f"the engine can not enforce the {LIMIT_NAMES[name]} limit: runs fail to start"
                    f" (or set {LIMIT_SETTINGS[name]}=0)"
                )
        security = " ".join(info.get("SecurityOptions") or [])
        if info and "seccomp" not in security:
            problems.append("the engine applies no seccomp profile")
        notes = []
        named = os.environ.get("OZWEB_SANDBOX_NETWORK", "").strip()
        if named:
            problems.append(
                f"OZWEB_SANDBOX_NETWORK={named}: containers join that network instead of reaching "
                "ozweb alone"
            )
        if "userns" not in security and "rootless" not in security:
            notes.append("no user namespace remapping: uid 1000 in a container is uid 1000 here")
        return {"problems": problems, "notes": notes}

    @staticmethod
    def _prepare_host_dirs(spec: SandboxSpec) -> str:
        """Make the mounted dirs exist and be writable by the container's user; return it.

        As root, the trees are handed over to the image's uid 1000 (whatever in them someone
        else made, e.g. a clone made as root). Otherwise the container runs as this process's
        own uid, which owns what it created: nothing is opened up to other users.
        """
        euid = os.geteuid()
        for directory in (spec.workspace, spec.home):
            directory.mkdir(parents=True, exist_ok=True)
        if euid == 0:
            for directory in (spec.workspace, spec.home):
                _chown_tree(directory)
            write_home_files(spec.home, spec.home_files, chown=(AGENT_UID, AGENT_GID))
            return f"{AGENT_UID}:{AGENT_GID}"
        write_home_files(spec.home, spec.home_files, chown=None)
        for directory in (spec.workspace, spec.home):
            if directory.stat().st_uid != euid:
                raise SandboxError(
                    f"{directory} belongs to uid {directory.stat().st_uid}, not to this worker's "
                    f"uid {euid}: the container (which runs as uid {euid}) could not write it"
                )
        return f"{euid}:{os.getegid()}"


LIMIT_NAMES = {"mem_limit": "memory", "nano_cpus": "CPU", "pids_limit": "pids"}
LIMIT_SETTINGS = {
    "mem_limit": "OZWEB_SANDBOX_MEMORY_BYTES",
    "nano_cpus": "OZWEB_SANDBOX_CPUS",
    "pids_limit": "OZWEB_SANDBOX_PIDS",
}


def unsupported_limits(info: dict[str, Any]) -> set[str]:
    return {
        name
        for name, flag in (
            ("mem_limit", "MemoryLimit"),
            ("nano_cpus", "CpuCfsQuota"),
            ("pids_limit", "PidsLimit"),
        )
        if info.get(flag) is False
    }


def _uid_gid(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid)


def _chown_tree(root: Path) -> None:
    """Hand `root` and everything under it to uid 1000 (only what is not its already)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            stat = os.lstat(path)
            if stat.st_uid != AGENT_UID or stat.st_gid != AGENT_GID:
                os.lchown(path, AGENT_UID, AGENT_GID)


def _is_cgroup_error(exc: APIError) -> bool:
    text = str(exc).lower()
    return "cgroup" in text or "pids" in text or "memory" in text or "cpu" in text


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"
