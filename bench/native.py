"""The feed viewers in C (bench/viewer.c), behind the same pipe protocol as
bench.feed.viewer_process, so that a benchmark can choose either.

The C program is compiled on first use with the machine's C compiler (`cc`, or `$CC`) into
`$XDG_CACHE_HOME/ozweb-bench/` (default `~/.cache`), named by the source's hash, so an edit
rebuilds it. `available()` says whether that works here; the benchmarks fall back to the
Python viewers (`--viewer python`) with a note when it does not.

The C viewers stamp each frame on receipt (CLOCK_REALTIME, the clock of `time.time_ns()`)
and keep its bytes; this process waits meanwhile, costing nothing, and parses the frames
only after the C program has reported, outside the window whose CPU is counted. The CPU
reported is the C program's own (`getrusage`) from "start" to the end of the drain.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from websockets.uri import parse_uri
from websockets.utils import accept_key, generate_key

SOURCE = Path(__file__).with_name("viewer.c")
RECORD = struct.Struct("<IIQ")  # socket, payload length, receipt time in ns


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ozweb-bench"


def build() -> Path:
    """The compiled viewer, built now if this source has not been built before."""
    source = SOURCE.read_bytes()
    binary = _cache_dir() / f"viewer-{hashlib.sha256(source).hexdigest()[:16]}"
    if binary.exists():
        return binary
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("no C compiler (cc or $CC) to build bench/viewer.c")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        raise RuntimeError(f"cc bench/viewer.c failed: {done.stderr.strip()[-500:]}")
    partial.replace(binary)  # atomic: parallel builds race harmlessly
    return binary


def available() -> str:
    """'' when the C viewers can run here, else why not."""
    try:
        build()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return str(exc)
    return ""


def _error_lines(proc: subprocess.Popen[str], failed: int) -> dict[int, str]:
    """The "error <socket> <text>" lines that follow a report."""
    assert proc.stdout is not None
    errors: dict[int, str] = {}
    for _ in range(failed):
        _, index, text = (proc.stdout.readline().rstrip("\n").split(" ", 2) + ["", ""])[:3]
        errors[int(index)] = text
    return errors


def native_viewer_process(
    conn: Any, url: str, count: int, connect_concurrency: int, drain: float
) -> None:
    """bench.feed.viewer_process's protocol: ("ready", connected, errors), then on "start" and
    "done"(expected seqs) the result dict that bench.feed.fill reads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and cleanup
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="ozweb-viewers-") as tmp:
        try:
            result = _run(conn, url, count, connect_concurrency, drain, Path(tmp), procs)
        except Exception as exc:  # report, never hang the parent
            result = {"fatal": f"{type(exc).__name__}: {exc}"}
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
        with contextlib.suppress(Exception):
            conn.send(("result", result))


def _run(
    conn: Any, url: str, count: int, concurrency: int, drain: float, tmp: Path,
    procs: list[subprocess.Popen[str]],
) -> dict[str, Any]:  # fmt: skip
    uri = parse_uri(url)
    if uri.secure:
        raise ValueError("wss:// is not spoken here: the benchmarks listen on 127.0.0.1")
    out = tmp / "frames.bin"
    proc = subprocess.Popen(
        [str(build())], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    procs.append(proc)
    assert proc.stdin is not None and proc.stdout is not None
    keys = [generate_key() for _ in range(count)]
    lines = [f"{uri.host} {uri.port} {uri.resource_name} {count} {concurrency} {out}"]
    lines += [f"{key} {accept_key(key)}" for key in keys]
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.flush()

    head = proc.stdout.readline().split()
    if len(head) != 3 or head[0] != "ready":
        raise RuntimeError(f"viewer.c did not start: {head} (exit {proc.poll()})")
    connected, failed = int(head[1]), int(head[2])
    never_opened = _error_lines(proc, failed)
    conn.send(("ready", connected, list(never_opened.values())[:5]))

    msg = conn.recv()
    assert msg[0] == "start", msg
    proc.stdin.write("start\n")
    proc.stdin.flush()
    msg = conn.recv()
    assert msg[0] == "done", msg
    expected = sorted(set(msg[1]))
    proc.stdin.write(f"done {round(drain * 1000)} {len(expected)} {' '.join(map(str, expected))}\n")
    proc.stdin.flush()

    tail = proc.stdout.readline().split()
    if len(tail) != 4 or tail[0] != "result":
        raise RuntimeError(f"viewer.c did not report: {tail} (exit {proc.wait(30)})")
    cpu_s, wall_s, failed = float(tail[1]), float(tail[2]), int(tail[3])
    errors = _error_lines(proc, failed)
    proc.stdin.close()
    proc.wait(30)

    # Only now, outside the window: the frames as bench.feed.fill reads them.
    frames: list[list[tuple[int, int, str]]] = [[] for _ in range(count)]
    data = memoryview(out.read_bytes())
    pos = 0
    while pos < len(data):
        sock, length, now = RECORD.unpack_from(data, pos)
        pos += RECORD.size
        frame = json.loads(bytes(data[pos : pos + length]))
        pos += length
        if frame.get("type") == "message.created":
            message = frame["message"]
            frames[sock].append((message["seq"], now, message["body"]))
    return {
        "connected": connected,
        "errors": list(errors.values()),
        # A socket that never opened gets None: fill() counts everything as lost for it.
        "frames": [None if i in never_opened else f for i, f in enumerate(frames)],
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "lag_ms": [],
    }
