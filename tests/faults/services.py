"""Private instances of the real services, for tests that stop and restart them.

The machine's shared Redis, PostgreSQL and Docker engine serve everyone else's tests: a fault
test never restarts those. Each class here starts its own server on a free port (or socket)
in a temporary directory and can stop, start and restart it.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.e2e.servers import free_port


def wait_for_port(port: int, *, up: bool, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout} s")


@dataclass
class RedisServer:
    """`redis-server` on a free port, nothing saved to disk."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @classmethod
    def available(cls) -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/3"

    def start(self) -> RedisServer:
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, up=True)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # a crash, not a clean shutdown
            self.process.wait(timeout=10)
        wait_for_port(self.port, up=False)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb in a temporary directory), on a free port.

    initdb refuses to run as root: as root the cluster belongs to `nobody`.
    """

    workdir: Path
    port: int = field(default_factory=free_port)

    @classmethod
    def available(cls) -> bool:
        return _pg_bin("initdb") is not None and _pg_bin("pg_ctl") is not None

    @property
    def data(self) -> Path:
        return self.workdir / "pgdata"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        prefix: list[str] = []
        if os.geteuid() == 0:
            prefix = ["runuser", "-u", "nobody", "--"]
        result = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, timeout=60, cwd=self.workdir
        )
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{result.stdout}{result.stderr}\n{self.log()}")

    def create(self) -> PostgresCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.workdir, pwd.getpwnam("nobody").pw_uid, -1)
        self._run(
            str(_pg_bin("initdb")), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        return self.start()

    def start(self) -> PostgresCluster:
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200"
        )
        self._run(
            str(_pg_bin("pg_ctl")), "-D", str(self.data), "-o", options,
            "-l", str(self.workdir / "postgres.log"), "-w", "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(str(_pg_bin("pg_ctl")), "-D", str(self.data), "-m", mode, "-w", "stop")

    def log(self) -> str:
        path = self.workdir / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


ENGINE_DIR = Path(tempfile.gettempdir()) / "ozweb-faults-dockerd"


@dataclass
class DockerEngine:
    """A second dockerd of our own: its own socket, data root, exec root (and so its own
    containerd) and pidfile, with the flags of scripts/docker/ensure-engine.sh (no bridge,
    no iptables: containers use the host network). Its data root is kept between sessions
    under ENGINE_DIR, so an image loaded once is there next time; a lock keeps two sessions
    from sharing it."""

    root: Path = ENGINE_DIR
    image: str = ""  # the image runs use, once loaded
    process: subprocess.Popen | None = None
    _lock: IO[bytes] | None = None

    @classmethod
    def available(cls) -> bool:
        return (
            os.geteuid() == 0
            and Path("/usr/sbin/dockerd").exists()
            and shutil.which("docker") is not None
        )

    @property
    def socket_path(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def docker(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            ["docker", "--host", self.host, *args], capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr}\n{self.log()}")
        return result.stdout

    def start(self) -> DockerEngine:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = (self.root / "lock").open("wb")
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._stop_leftover()
        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            [
                "/usr/sbin/dockerd",
                f"--host={self.host}",
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.root / 'docker.pid'}",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--shutdown-timeout=2",
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited at start:\n{self.log()}")
            check = subprocess.run(
                ["docker", "--host", self.host, "version"], capture_output=True, timeout=10
            )
            if check.returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer:\n{self.log()}")

    def _stop_leftover(self) -> None:
        """A dockerd a killed session left on this data root (we hold the lock: it is ours)."""
        pidfile = self.root / "docker.pid"
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        """As `systemctl stop docker` does: SIGTERM; the engine stops its containers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def load(self, image: str) -> None:
        """Copy `image` from the machine's engine into this one (once: the data root stays)."""
        mine = subprocess.run(
            ["docker", "--host", self.host, "image", "inspect", "-f", "{{.Id}}", image],
            capture_output=True,
            text=True,
        )
        theirs = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", image], capture_output=True, text=True
        )
        if mine.returncode == 0 and mine.stdout == theirs.stdout:
            return
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "--host", self.host, "load", "-q"], stdin=save.stdout, check=True,
            capture_output=True, timeout=600,
        )  # fmt: skip
        assert save.wait(timeout=60) == 0

    def log(self) -> str:
        path = self.root / "dockerd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""
