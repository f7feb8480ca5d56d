"""The unsandboxed sandbox: the harness as a local subprocess, for machines without an engine.

Also home to the plumbing both sandboxes share: the stdout line stream fed by a reader thread,
the bounded stderr tail, writing `home_files`, and wrapping argv with the setup commands.

A local process can not outlive the worker that started it (it dies with it or is orphaned
without anyone reading its pipes), so `find()` never re-attaches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .base import SandboxSpec

logger = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 8 * 1024
_READ_SIZE = 64 * 1024
_EOF = object()


class LineStream:
    """Bytes in (from one reader thread), decoded lines out (to any number of readers).

    Lines are handed over as soon as their newline arrives; `lines()` ends at EOF, for every
    reader and for every later call.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._partial = bytearray()
        self._ended = threading.Event()  # the process's EOF arrived
        self._drained = threading.Event()  # and a reader has taken it

    def feed(self, data: bytes) -> None:
        self._partial += data
        if b"\n" not in data:
            return
        *complete, rest = bytes(self._partial).split(b"\n")
        self._partial = bytearray(rest)
        for line in complete:
            self._queue.put(_decode_line(line))

    def end(self) -> None:
        if self._partial:
            self._queue.put(_decode_line(bytes(self._partial)))
            self._partial.clear()
        self._ended.set()
        self._queue.put(_EOF)

    def lines(self) -> Iterator[str]:
        while not self._drained.is_set():
            item = self._queue.get()
            if item is _EOF:
                self._drained.set()
                self._queue.put(_EOF)  # wake any other reader blocked in get()
                return
            yield item  # type: ignore[misc]

    @property
    def ended(self) -> bool:
        """Whether the stream reached EOF (lines may still be waiting to be read)."""
        return self._ended.is_set()


class StderrTail:
    """The last `STDERR_TAIL_BYTES` of a byte stream."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._buffer += data
            if len(self._buffer) > self._limit:
                del self._buffer[: len(self._buffer) - self._limit]

    def text(self) -> str:
        with self._lock:
            return self._buffer.decode("utf-8", errors="replace")


def _decode_line(line: bytes) -> str:
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8", errors="replace")


def start_reader(
    name: str, read: Callable[[], bytes], sink: Callable[[bytes], None]
) -> threading.Thread:
    """Run `sink(chunk)` for every chunk `read()` returns until it returns b"" (or fails)."""

    def loop() -> None:
        while True:
            try:
                chunk = read()
            except (OSError, ValueError):
                chunk = b""
            sink(chunk)
            if not chunk:
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


def with_setup(commands: list[str], argv: list[str], workdir: str) -> list[str]:
    """argv run by a shell that first runs `commands` in `workdir` (stopping at a failure).

    Their output goes to stderr so that stdout carries only the harness's own stream.
    """
    if not commands:
        return list(argv)
    steps = [f"{{\n{command}\n}} 1>&2" for command in commands]
    script = "\n".join(["set -e", *steps, f"cd {shlex.quote(workdir)}", 'exec "$@"'])
    return ["sh", "-c", script, "ozweb-setup", *argv]


def write_home_files(home: Path, files: dict[str, str], *, chown: tuple[int, int] | None) -> None:
    """Write `files` (paths relative to `home`) under `home`, owned by `chown` if given."""
    home_resolved = home.resolve()
    for relative, content in files.items():
        target = (home / relative).resolve()
        if home_resolved not in target.parents:
            raise ValueError(f"home file {relative!r} is outside the home directory")
        created = []
        parent = target.parent
        while not parent.exists():
            created.append(parent)
            parent = parent.parent
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        if chown is not None:
            for path in [target, *created]:
                os.chown(path, *chown)


class LocalProcess:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._stdout = LineStream()
        self._stderr = StderrTail()
        self._stdin_lock = threading.Lock()
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout, proc.stderr
        self._readers = [
            start_reader(
                f"sandbox-local-{proc.pid}-stdout",
                lambda: os.read(out.fileno(), _READ_SIZE),
                self._feed_stdout,
            ),
            start_reader(
                f"sandbox-local-{proc.pid}-stderr",
                lambda: os.read(err.fileno(), _READ_SIZE),
                self._stderr.feed,
            ),
        ]

    def _feed_stdout(self, chunk: bytes) -> None:
        if chunk:
            self._stdout.feed(chunk)
        else:
            self._stdout.end()

    @property
    def container_id(self) -> str:
        return f"local-{self._proc.pid}"

    def stdout_lines(self) -> Iterator[str]:
        return self._stdout.lines()

    def stderr_tail(self) -> str:
        return self._stderr.text()

    def write(self, data: bytes) -> None:
        stdin = self._proc.stdin
        with self._stdin_lock:
            if stdin is None or stdin.closed:
                raise BrokenPipeError("stdin is closed")
            if self._proc.poll() is not None:
                raise BrokenPipeError("the process has exited")
            view = memoryview(data)
            while view:
                written = os.write(stdin.fileno(), view)
                view = view[written:]

    def close_stdin(self) -> None:
        with self._stdin_lock:
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()

    def kill(self) -> None:
        # The process leads its own group: kill whatever it started as well.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        # Killed by a signal: report it the way a container's exit code does (128 + signal).
        return 128 - code if code < 0 else code

    def cleanup(self) -> None:
        self.kill()  # leftovers of the group (background children of the harness)
        self.close_stdin()
        for reader in self._readers:
            reader.join(timeout=2)
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        if self._proc.poll() is None:
            self._proc.wait(timeout=5)


class LocalSandbox:
    """Runs the harness as a plain subprocess of the worker: no isolation at all."""

    kind = "local"
    isolated = False

    def start(self, spec: SandboxSpec) -> LocalProcess:
        for directory in (spec.workspace, spec.home):
            directory.mkdir(parents=True, exist_ok=True)
        write_home_files(spec.home, spec.home_files, chown=None)
        env = {
            "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin",
            "LANG": os.environ.get("LANG") or "C.UTF-8",
            **spec.env,
            "HOME": str(spec.home),
        }
        argv = with_setup(spec.setup_commands, spec.argv, str(spec.workspace))
        logger.warning(
            "run %s: starting %s as a local subprocess (UNSANDBOXED)", spec.run_id, argv[0]
        )
        proc = subprocess.Popen(
            argv,
            cwd=spec.workspace,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,
        )
        return LocalProcess(proc)

    def find(self, run_id: int, skip_stdout_lines: int = 0) -> None:
        return None  # a local process dies with its worker
