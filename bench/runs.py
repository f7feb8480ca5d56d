"""Agent-run benchmark: mention → first event, agent output → browsers (against a bare relay),
reply → stdin.

    .venv/bin/python -m bench.runs [--sandbox docker|local|both] [--mentions 10]
                                   [--rate 1000] [--seconds 3] [--agents 10] [--viewers 20]
                                   [--viewer-procs 1] [--heavy] [--replies 50] [--reply-gap 0.1]
                                   [--sandbox-network NAME]

It starts the real app the way `make run` does (embedded mode): one `daphne` process on
127.0.0.1, a fresh SQLite database in a temp dir, the embedded channel layer, in-process run
dispatch, `OZWEB_SANDBOX=docker` (or `local`). Docker sandboxes are the product's default,
isolated ones (`--network none`, ozweb reached through the relay socket; the benchmark agent
needs nothing more than its stdin and stdout); `--sandbox-network host` sets
OZWEB_SANDBOX_NETWORK as some tests do. It creates a user and token with
`manage.py create_api_user`, and `command`-harness agents through the REST API whose program
(below, stdlib only) is passed inline: the agent's environment holds the source and its command
is `python3 -u -c "$BENCH_AGENT"` (the executor runs it through `sh -c`), so the cached harness
image needs nothing extra.

Clocks: the agent stamps `time.time_ns()` into what it prints and into what it echoes; a
container shares the host kernel's clock, so those stamps compare directly with the client's.
The websocket client (`/ws/v1/threads/{id}/?token=…`, the `websockets` library) lives in its
own process and stamps every frame on receipt, so the HTTP posting never delays a receipt.

Measured, each against the spec's target on this machine:

1. mention → first agent event on the websocket: post `@agent cmd=quit` to a channel, time to
   the first non-status message the agent authors (the program prints it as its first act),
   and to the "picked this up" status. `--mentions` runs, each a new run and container, after
   one unmeasured warm-up. Target p50 < 1 s.
2. stdout line → websocket: the agent prints `{"type":"text","text":"L <i> <ns> t<k>"}` on
   an open-loop schedule (`--rate` lines/s for `--seconds`), one agent in its channel; then
   `--agents` agents at once sharing the same total rate (10 × 100/s), in one channel (3.;
   each in its own with `--viewers 0`); `--heavy` adds 10
   agents × `--rate` each, each in its own channel (10,000 lines/s: beyond what one embedded
   daphne ingests, ~1,000/s on 2 cores, so not in the defaults). The streams start together:
   every agent first says it is ready, then gets the stream command with a common start time.
   Target p99 < 250 ms, nothing lost.
3. agent output → browsers (the `--agents` stream): its agents all work in one channel, which
   `--viewers` browsers (default 20) watch besides the API client, on the thread page's own
   socket (`/ws/threads/{id}/`, HTML fragments, the page's Origin; `?token=` instead of a
   session cookie), in `--viewer-procs` processes of their own that stamp each line on
   receipt. One message in the channel starts every agent's stream (a message reaches every
   agent running in its thread). Target: p99 line printed → on every browser's socket under
   250 ms, nothing lost or duplicated, and daphne's CPU per delivered line (its CPU seconds
   from the stream command to the last line on the last socket, over the lines it put on the
   browsers' and the API client's sockets) at most 4× the bare relay's. The runs are told to
   end after that (their ends are not lines delivered); daphne's CPU through their ends is
   printed too, outside the ratio.
   The relay (bench/references.py, the `websockets` library's `broadcast`, no framework, no
   database) runs the same shape in the same run, after ozweb: as many producers, each the
   same agent program on this host with its stdout on a socket to the relay, told to stream
   with the same rate, length and common start; the relay sends what one read of a producer
   brings as one frame to `--viewers` viewers of the same kind of process. Printed: both
   latencies, both CPU figures (the relay process alone: neither side counts the agents, nor
   Docker's daemons), the ratio and PASS/FAIL, with lines per frame (daphne batches a run's
   lines per flush), the viewers' CPU and event-loop lag (a saturated client shows there).
4. human reply → bytes on the agent's stdin: `POST /api/v1/runs/{id}/messages/` every
   `--reply-gap` s; the agent stamps each `user` line as it reads it and echoes the stamp.
   Target p99 < 250 ms. The echo's arrival on the websocket (round trip) is shown too.

Everything listens on 127.0.0.1; every wait is bounded. Daphne, the relay and its producers,
the containers of this run (label dev.ozweb.instance=<unique>), the client processes and the
temp dirs are cleaned up on exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bench.references import RelayStack
from bench.stack import (
    FINISHED,
    HARNESS_IMAGE,
    HOST,
    VENV_BIN,
    Api,
    CpuWatch,
    LoopLag,
    Stack,
    feed_messages,
    log,
    machine_line,
    open_feed,
    open_loop,
    percentile,
    require_harness_image,
    run_each,
    stack_options,
    wait_for_quiet,
)

TARGET_FIRST_P50_MS = 1000.0
TARGET_LINE_P99_MS = 250.0
TARGET_REPLY_P99_MS = 250.0
# Agent output to browsers: server CPU per delivered line at most this × the bare relay's.
TARGET_RELAY_RATIO = 4.0

# The benchmark agent (runs inside the container; Python 3 standard library only).
#   at start:          F <ns>                       (its first event)
#   cmd=echo k=K:      R <K> <ns when the line was read from stdin>
#   cmd=stream rate=R secs=S start=NS [then=quit]:
#                      L <i> <ns>[ <$BENCH_TAG>] lines, open loop, then D <n>
#   cmd=quit / EOF:    a result line, exit 0
AGENT_CODE = r"""
import json, os, re, sys, time
w = sys.stdout.write
tag = " " + os.environ["BENCH_TAG"] if os.environ.get("BENCH_TAG") else ""
def out(text):
    w(json.dumps({"type": "text", "text": text}) + "\n"); sys.stdout.flush()
out("F %d" % time.time_ns())
read = sys.stdin.buffer.readline
while True:
    line = read()
    got = time.time_ns()
    if not line:
        break
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("type") != "user":
        continue
    kv = dict(re.findall(r"(\w+)=(\S+)", msg.get("text", "")))
    cmd = kv.get("cmd")
    if cmd == "echo":
        out("R %s %d" % (kv.get("k", "?"), got))
    elif cmd == "stream":
        rate, start = float(kv["rate"]), int(kv["start"])
        n = int(float(kv["secs"]) * rate)
        step = 1e9 / rate
        for i in range(n):
            delay = (start + i * step - time.time_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            w('{"type": "text", "text": "L %d %d%s"}\n' % (i, time.time_ns(), tag))
            sys.stdout.flush()
        out("D %d" % n)
        if kv.get("then") == "quit":
            break
    elif cmd == "quit":
        break
w('{"type": "result", "text": "done"}\n'); sys.stdout.flush()
"""


# ---------------------------------------------------------------------------------------------
# The websocket client: its own process, stamps every frame on receipt
# ---------------------------------------------------------------------------------------------


class Frame(NamedTuple):
    recv_ns: int
    thread: int
    seq: int
    kind: str
    author: str  # "user", "agent", "system"
    handle: str
    run: int | None
    body: str
    run_status: str | None
    created_at: str  # when the server wrote it (ISO 8601)


def client_process(conn: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and cleanup
    try:
        asyncio.run(_client_main(conn))
    except Exception as exc:
        with contextlib.suppress(Exception):
            conn.send(("fatal", f"{type(exc).__name__}: {exc}"))


async def _client_main(conn: Any) -> None:
    """Commands from the parent: ("sub", thread_id, url), ("take",), ("stats",), ("stop",)."""
    import websockets

    loop = asyncio.get_running_loop()
    frames: list[Frame] = []
    errors: list[str] = []
    sockets: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    lag = LoopLag()
    stop = asyncio.Event()

    async def read(thread_id: int, ws: Any) -> None:
        try:
            async for now, m in feed_messages(ws):
                data = m.get("data") or {}
                frames.append(
                    Frame(now, thread_id, m["seq"], m["kind"], m["author"]["type"],
                          m["author"]["handle"], m.get("run"), m["body"],
                          data.get("run_status") if m["kind"] == "status" else None,
                          m.get("created_at") or "")
                )  # fmt: skip
        except websockets.ConnectionClosed as exc:
            if not stop.is_set():
                errors.append(f"thread {thread_id} closed: {exc}")

    monitor = asyncio.create_task(lag.run(stop))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "sub":
            _, thread_id, url = cmd
            try:
                ws = await open_feed(url)
                sockets.append(ws)
                tasks.append(asyncio.create_task(read(thread_id, ws)))
                conn.send(("ok",))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
        elif cmd[0] == "take":
            taken, frames[:] = list(frames), []
            conn.send(("frames", taken))
        elif cmd[0] == "stats":
            ru = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (ru.ru_utime + ru.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            conn.send(("stats", {"cpu_s": cpu, "lags": list(lag.ms), "errors": list(errors)}))
            ru0, lag.ms[:] = ru, []
        elif cmd[0] == "stop":
            break
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, monitor, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    conn.send(("stopped",))


class Client:
    """The parent's side: frames accumulate in `frames`; `wait` polls until a condition holds."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=client_process, args=(child,), daemon=True)
        self.proc.start()
        self.frames: list[Frame] = []
        self.lock = threading.Lock()

    def _call(self, *cmd: Any, timeout: float = 60) -> Any:
        with self.lock:
            self.pipe.send(cmd)
            if not self.pipe.poll(timeout):
                raise RuntimeError(f"the websocket client did not answer {cmd[0]!r}")
            reply = self.pipe.recv()
        if reply[0] in ("fatal", "error"):
            raise RuntimeError(f"websocket client: {reply[1]}")
        return reply

    def subscribe(self, thread_id: int, url: str) -> None:
        self._call("sub", thread_id, url)

    def pump(self) -> list[Frame]:
        new = self._call("take")[1]
        self.frames.extend(new)
        return new

    def wait(self, done: Any, timeout: float, what: str) -> None:
        """Poll every 20 ms until `done()` is true; raise after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            if done():
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.02)

    def stats(self) -> dict[str, Any]:
        return self._call("stats")[1]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call("stop", timeout=10)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)

    # -- queries over the frames so far --

    def of_run(self, run_id: int) -> list[Frame]:
        return [f for f in self.frames if f.run == run_id]

    def finished(self, run_id: int) -> Frame | None:
        return next((f for f in self.frames if f.run == run_id and f.run_status in FINISHED), None)

    def done_line(self, run_id: int) -> Frame | None:
        """The `D <n>` line the benchmark agent prints after its stream."""
        return next(
            (f for f in self.frames if f.run == run_id and f.kind == "text" and
             f.body.startswith("D ")),
            None,
        )  # fmt: skip

    def first_agent_frame(self, handle: str, after_ns: int) -> Frame | None:
        return next(
            (
                f
                for f in self.frames
                if f.recv_ns >= after_ns and f.author == "agent" and f.handle == handle
                and f.kind != "status"
            ),
            None,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Browser viewers (and the relay's viewers): their own process, stamp every line on receipt
# ---------------------------------------------------------------------------------------------

# A streamed line as it appears in any frame: a browser's HTML fragment, the relay's JSON.
LINE_RE = re.compile(rb"L (\d+) (\d+) t(\d+)")


def viewers_process(conn: Any, kind: str, url: str, count: int, origin: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and cleanup
    try:
        result = asyncio.run(_viewers_main(conn, kind, url, count, origin))
    except Exception as exc:  # report, never hang the parent
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
    with contextlib.suppress(Exception):
        conn.send(("result", result))


async def _viewers_main(conn: Any, kind: str, url: str, count: int, origin: str) -> dict[str, Any]:
    """`count` viewers of `url`. kind "browser": the thread page's socket (`/ws/threads/{id}/`,
    HTML fragments), opened with the page's Origin, streaming once it has answered
    `{"type": "resume", "since": 0}` with the thread so far; kind "relay": the bare relay
    (streaming once it answers a ping). Then ("start",) → CPU counted from here;
    ("done", lines each, drain s) → once each viewer has that many lines (or after drain s),
    the result: per viewer (tag, i, printed ns, received ns) for every line, and frames."""
    import websockets

    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(10)
    sockets: list[Any] = [None] * count
    errors: list[str] = []
    lines: list[list[tuple[int, int, int, int]]] = [[] for _ in range(count)]
    frames = [0] * count  # frames with at least one line in them
    state: dict[str, Any] = {"want": None}
    complete = [asyncio.Event() for _ in range(count)]
    lag = LoopLag()
    stop = asyncio.Event()

    async def open_one(i: int) -> None:
        async with gate:
            try:
                if kind == "relay":
                    sockets[i] = await open_feed(url)
                    return
                ws = await websockets.connect(
                    url, origin=origin, open_timeout=30, max_queue=None, compression=None,
                    ping_interval=None, max_size=None,
                )  # fmt: skip
                await ws.send('{"type": "resume", "since": 0}')
                await asyncio.wait_for(ws.recv(), 30)  # the thread so far: it is streaming
                sockets[i] = ws
            except Exception as exc:
                errors.append(f"viewer {i}: {type(exc).__name__}: {exc}")

    async def read_one(i: int) -> None:
        ws, got, find = sockets[i], lines[i], LINE_RE.findall
        try:
            async for raw in ws:
                now = time.time_ns()
                found = find(raw.encode() if isinstance(raw, str) else raw)
                if found:
                    frames[i] += 1
                    got.extend((int(t), int(k), int(ns), now) for k, ns, t in found)
                if state["want"] is not None and len(got) >= state["want"]:
                    complete[i].set()
        except websockets.ConnectionClosed as exc:
            if not stop.is_set():
                errors.append(f"viewer {i} closed: {exc}")
        finally:
            complete[i].set()

    await asyncio.gather(*(open_one(i) for i in range(count)))
    live = [i for i in range(count) if sockets[i] is not None]
    readers = [asyncio.create_task(read_one(i)) for i in live]
    conn.send(("ready", len(live), errors[:3]))
    msg = await loop.run_in_executor(None, conn.recv)
    assert msg[0] == "start", msg
    for i in live:  # what came before the start (the backfill) is not measured
        lines[i].clear()
        frames[i] = 0
    monitor = asyncio.create_task(lag.run(stop))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    msg = await loop.run_in_executor(None, conn.recv)
    assert msg[0] == "done", msg
    state["want"] = msg[1]
    for i in live:
        if len(lines[i]) >= msg[1]:
            complete[i].set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(complete[i].wait() for i in live)), msg[2])
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    stop.set()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, monitor, return_exceptions=True)
    await asyncio.gather(*(sockets[i].close() for i in live), return_exceptions=True)
    return {
        "connected": len(live),
        "errors": errors,
        "lines": [lines[i] for i in live],
        "frames": [frames[i] for i in live],
        "cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
        "wall_s": wall,
        "lags": sorted(lag.ms),
    }


class Viewers:
    """The parent's side: `count` viewers split over `procs` processes."""

    def __init__(self, kind: str, url: str, count: int, procs: int, origin: str = "") -> None:
        ctx = mp.get_context("spawn")
        self.workers: list[tuple[Any, Any]] = []
        split = [count // procs + (i < count % procs) for i in range(procs)]
        for n in (n for n in split if n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=viewers_process, args=(child, kind, url, n, origin), daemon=True
            )
            proc.start()
            self.workers.append((proc, parent))
        self.connected, self.errors = 0, []
        try:
            for _, pipe in self.workers:
                reply = self._recv(pipe, 120, "connect")
                self.connected += reply[1]
                self.errors += reply[2]
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _recv(pipe: Any, timeout: float, what: str) -> Any:
        if not pipe.poll(timeout):
            raise RuntimeError(f"viewers did not {what} within {timeout:g} s")
        reply = pipe.recv()
        if reply[0] == "result" and "fatal" in reply[1]:
            raise RuntimeError(f"viewer process failed: {reply[1]['fatal']}")
        return reply

    def start(self) -> None:
        for _, pipe in self.workers:
            pipe.send(("start",))

    def finish(self, lines_each: int, drain: float) -> list[dict[str, Any]]:
        for _, pipe in self.workers:
            pipe.send(("done", lines_each, drain))
        return [self._recv(pipe, drain + 60, "report")[1] for _, pipe in self.workers]

    def close(self) -> None:
        for proc, _ in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


@dataclass
class Fanout:
    """What `viewers` viewers got of a stream, and what it cost the server."""

    viewers: int
    connected: int = 0
    lat: list[float] = field(default_factory=list)  # line printed → on a viewer's socket
    expected: int = 0  # lines × viewers
    received: int = 0
    lost: int = 0
    dup: int = 0
    frames: int = 0  # frames that carried lines
    server_cpu_s: float = float("nan")
    deliveries: int = 0  # lines the server put on any socket of the thread (CPU is per this)
    server_cpu: float = float("nan")  # % of a core
    client_cpu: float = float("nan")
    client_lag_max: float = float("nan")
    error: str = ""

    def fill(self, outcomes: list[dict[str, Any]], per_tag: int, tags: int) -> None:
        """Latency, loss and duplicates per viewer from the (tag, i, ns, recv_ns) it got."""
        self.expected = per_tag * tags * self.viewers
        self.lost = self.expected
        lags: list[float] = []
        for outcome in outcomes:
            self.connected += outcome["connected"]
            self.frames += sum(outcome["frames"])
            lags += outcome["lags"]
            for got in outcome["lines"]:
                seen: set[tuple[int, int]] = set()
                for tag, i, ns, recv_ns in got:
                    if (tag, i) in seen:
                        self.dup += 1
                        continue
                    seen.add((tag, i))
                    self.lat.append((recv_ns - ns) / 1e6)
                self.received += len(seen)
        self.lost -= self.received
        self.lat.sort()
        self.client_lag_max = max(lags, default=float("nan"))
        errors = [e for o in outcomes for e in o["errors"]]
        if errors:
            self.error = f"{len(errors)} viewer errors, e.g. {errors[:2]}"

    @property
    def us_per_line(self) -> float:
        return 1e6 * self.server_cpu_s / self.deliveries if self.deliveries else float("nan")

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and self.connected == self.viewers
            and self.lost == 0
            and self.dup == 0
            and bool(self.lat)
            and percentile(self.lat, 99) < TARGET_LINE_P99_MS
        )


def relay_stream(
    relay: RelayStack, args: argparse.Namespace, agents: int, rate_each: float
) -> Fanout:
    """The same shape through the bare relay: `agents` producers running the benchmark agent's
    program on this host, each with its stdout on a socket to the relay, told to stream with
    the same rate, length and common start; `args.viewers` viewers of the relay."""
    out = Fanout(viewers=args.viewers)
    viewers = Viewers("relay", f"ws://{HOST}:{relay.ws_port}/", args.viewers, args.viewer_procs)
    producers: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(agents):
            assert relay.lines_port is not None
            with socket.create_connection((HOST, relay.lines_port), timeout=10) as sock:
                producers.append(subprocess.Popen(
                    [str(VENV_BIN / "python"), "-u", "-c", AGENT_CODE],
                    stdin=subprocess.PIPE, stdout=sock.fileno(), stderr=subprocess.DEVNULL,
                    env={**os.environ, "BENCH_TAG": f"t{len(producers)}"},
                    start_new_session=True,
                ))  # fmt: skip
        time.sleep(0.5)  # the producers' interpreters start (not measured, as runs' starts)
        wait_for_quiet(args.quiet_wait)
        cpu = CpuWatch({"relay": [relay.pid]})
        viewers.start()
        cpu.begin()
        start_ns = time.time_ns() + int(0.3e9) + agents * int(0.05e9)
        command = f"cmd=stream rate={rate_each:g} secs={args.seconds:g} start={start_ns}"
        for proc in producers:
            assert proc.stdin is not None
            proc.stdin.write((json.dumps({"type": "user", "text": command}) + "\n").encode())
            proc.stdin.flush()
        per_tag = int(args.seconds * rate_each)
        # As for ozweb: the window ends with the last line on the last viewer's socket.
        outcomes = viewers.finish(per_tag * agents, args.drain)
        cpu.end()
        for proc in producers:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()  # EOF: the program ends
        for proc in producers:
            proc.wait(timeout=60)
        out.fill(outcomes, per_tag, agents)
        out.server_cpu_s = cpu.used.get("relay", float("nan"))
        out.server_cpu = cpu.percent("relay")
        out.deliveries = out.received
        out.client_cpu = sum(100 * o["cpu_s"] / cpu.wall for o in outcomes)
    finally:
        for proc in producers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
        viewers.close()
    return out


# ---------------------------------------------------------------------------------------------
# The measurements
# ---------------------------------------------------------------------------------------------


@dataclass
class Stream:
    label: str
    agents: int
    rate_each: float
    seconds: float
    lat: list[float] = field(default_factory=list)
    expected: int = 0
    lost: int = 0
    dup: int = 0
    achieved_rate: float = 0.0  # lines/s received, all agents together
    daphne_cpu: float = float("nan")  # % of one core
    daphne_cpu_with_ends: float = float("nan")  # CPU s, through the runs' ends
    machine_cpu: float = float("nan")  # % of the machine
    client_cpu: float = float("nan")
    client_lag_max: float = float("nan")
    busy_before: float = float("nan")
    top: list[tuple[float, int, str]] = field(default_factory=list)  # busiest processes
    batches: int = 0  # bursts the lines arrived in (a gap over 2 ms starts a new one), ≈ flushes
    error: str = ""
    browsers: Fanout | None = None  # with --viewers: all agents in one thread, its browsers
    relay: Fanout | None = None  # the same shape through the bare relay, in the same run

    @property
    def relay_ratio(self) -> float:
        """Server CPU per delivered line over the relay's."""
        if self.browsers is None or self.relay is None:
            return float("nan")
        return self.browsers.us_per_line / self.relay.us_per_line

    @property
    def fanout_ok(self) -> bool | None:
        if self.browsers is None:
            return None
        ratio = self.relay_ratio
        return self.browsers.ok and ratio == ratio and ratio <= TARGET_RELAY_RATIO


@dataclass
class Result:
    sandbox: str
    first: list[float] = field(default_factory=list)  # mention → first agent event
    picked: list[float] = field(default_factory=list)  # mention → "picked this up"
    started: list[float] = field(default_factory=list)  # mention → the agent's process runs
    first_warm_up: float = float("nan")
    streams: list[Stream] = field(default_factory=list)
    reply: list[float] = field(default_factory=list)  # reply POST → read on stdin
    reply_ws: list[float] = field(default_factory=list)  # reply POST → echo on the websocket
    reply_post_ms: list[float] = field(default_factory=list)
    replies_sent: int = 0
    notes: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, stack: Stack, api: Api, client: Client) -> None:
        self.stack, self.api, self.client = stack, api, client
        self.team = api.team_id()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.api.call("POST", path, body, 201)

    def agent(self, handle: str, tag: str = "") -> dict[str, Any]:
        """`tag` ("t<k>"): the agent ends each streamed line with it (BENCH_TAG)."""
        return self.api.create_command_agent(
            self.team, handle, AGENT_CODE, python=self.stack.agent_python, run_timeout=600,
            **({"BENCH_TAG": tag} if tag else {}),
        )  # fmt: skip

    def channel(self, name: str) -> int:
        thread_id = self.api.create_thread(self.team, name)
        self.client.subscribe(thread_id, self.api.feed_url(thread_id))
        return thread_id

    def say(self, thread_id: int, body: str) -> int:
        return self.post(f"/api/v1/threads/{thread_id}/messages/", {"body": body})["seq"]

    def steer(self, run_id: int, body: str) -> None:
        self.post(f"/api/v1/runs/{run_id}/messages/", {"body": body})

    def wait_finished(self, run_ids: list[int], timeout: float) -> None:
        self.client.wait(
            lambda: all(self.client.finished(r) for r in run_ids),
            timeout,
            f"run(s) {run_ids} to finish",
        )
        bad = [
            (r, f.run_status, f.body[:200])
            for r in run_ids
            if (f := self.client.finished(r)) and f.run_status != "succeeded"
        ]
        if bad:
            raise RuntimeError(f"runs did not succeed: {bad}")

    def start_waiting(self, handles: list[str], threads: list[int]) -> list[int]:
        """Mention each agent with no command: it starts, says F, and waits. Its run ids."""
        t0 = time.time_ns()
        for handle, thread_id in zip(handles, threads, strict=True):
            self.say(thread_id, f"@{handle} cmd=wait")
        ready: dict[str, Frame] = {}

        def all_ready() -> bool:
            for h in handles:
                if h not in ready and (f := self.client.first_agent_frame(h, t0)):
                    ready[h] = f
            return len(ready) == len(handles)

        self.client.wait(all_ready, 60 + 10 * len(handles), f"{len(handles)} agent(s) to start")
        return [ready[h].run for h in handles]  # type: ignore[misc]

    # 1. mention → first event -------------------------------------------------------------

    def first_event(self, result: Result, count: int) -> None:
        self.agent("first")
        thread_id = self.channel("bench-first")
        for i in range(count + 1):
            time.sleep(0.3)  # let the previous run's teardown settle
            sent = time.time_ns()
            self.say(thread_id, f"@first cmd=quit i={i}")
            c = self.client
            c.wait(
                lambda c=c, sent=sent: c.first_agent_frame("first", sent),
                60,
                "the first agent event",
            )
            first = c.first_agent_frame("first", sent)
            assert first is not None and first.run is not None
            picked = next(f for f in c.frames if f.run == first.run and "picked this up" in f.body)
            self.wait_finished([first.run], 60)
            if self.stack.args.verbose:
                log(f"run {first.run}: " + ", ".join(
                    f"{(f.recv_ns - sent) / 1e6:.0f} ms {f.kind} {f.body[:30]!r}"
                    for f in c.of_run(first.run)
                ))  # fmt: skip
            ms = (first.recv_ns - sent) / 1e6
            if i == 0:
                result.first_warm_up = ms
                continue
            result.first.append(ms)
            result.picked.append((picked.recv_ns - sent) / 1e6)
            if first.body.startswith("F "):
                result.started.append((int(first.body.split()[1]) - sent) / 1e6)
        for values in (result.first, result.picked, result.started):
            values.sort()

    # 2. stdout line → websocket -----------------------------------------------------------

    def stream(
        self, label: str, prefix: str, agents: int, rate_each: float, viewers: int = 0
    ) -> Stream:
        """Each agent in its own channel; with `viewers`, all in one channel that many
        browsers watch (the thread page's socket) besides the API client."""
        args = self.stack.args
        s = Stream(label=label, agents=agents, rate_each=rate_each, seconds=args.seconds)
        handles = [f"{prefix}{k}" for k in range(agents)]
        threads = []
        for k, h in enumerate(handles):
            self.agent(h, tag=f"t{k}")
            if not viewers:
                threads.append(self.channel(f"bench-{h}"))
        if viewers:
            threads = [self.channel(f"bench-{prefix}")] * agents
        runs = self.start_waiting(handles, threads)
        browsers: Viewers | None = None
        if viewers:
            s.browsers = Fanout(viewers=viewers)
            browsers = Viewers(
                "browser",
                f"ws://{HOST}:{self.stack.port}/ws/threads/{threads[0]}/?token={self.api.token}",
                viewers,
                args.viewer_procs,
                origin=f"http://{HOST}:{self.stack.port}",  # as the thread page's own
            )
        try:
            self._stream(s, runs, agents, rate_each, prefix, browsers, threads[0])
        finally:
            if browsers is not None:
                browsers.close()
        return s

    def _stream(
        self,
        s: Stream,
        runs: list[int],
        agents: int,
        rate_each: float,
        prefix: str,
        browsers: Viewers | None,
        thread_id: int,
    ) -> None:
        args = self.stack.args
        s.busy_before = wait_for_quiet(args.quiet_wait)
        cpu = CpuWatch({"daphne": [self.stack.pid]})
        self.client.stats()  # reset the client's CPU and lag counters
        if browsers is not None:
            browsers.start()
        cpu.begin()
        with_ends = CpuWatch({"daphne": [self.stack.pid]})
        with_ends.begin()
        profiler = self.stack.profile(f"stream-{prefix}", args.seconds + 1)
        start_ns = time.time_ns() + int(0.3e9) + agents * int(0.05e9)
        command = f"cmd=stream rate={rate_each:g} secs={args.seconds:g} start={start_ns}"

        def tell(body: str) -> None:
            if browsers is not None:
                # One thread: a message there reaches every agent running in it.
                self.say(thread_id, body)
            else:
                for run_id in runs:
                    self.steer(run_id, body)

        tell(command)
        # The CPU window ends with the last line on the last socket: each run's `D` line
        # comes after its last `L` line. The runs end after it, outside the window (their
        # ends are not lines delivered; the relay's producers have none to speak of).
        with contextlib.suppress(TimeoutError):  # what did not come is counted as lost
            self.client.wait(
                lambda: all(self.client.done_line(r) for r in runs),
                args.seconds + 60,
                "every run's last line",
            )
        per_agent = int(args.seconds * rate_each)
        outcomes = browsers.finish(per_agent * agents, args.drain) if browsers else []
        cpu.end()
        tell("cmd=quit")
        self.wait_finished(runs, 60)
        with_ends.end()
        s.daphne_cpu_with_ends = with_ends.used.get("daphne", float("nan"))
        if profiler is not None:
            profiler.wait(timeout=60)
        stats = self.client.stats()
        s.daphne_cpu, s.machine_cpu = cpu.percent("daphne"), cpu.machine_percent()
        s.top = cpu.top[:6]
        s.client_cpu = 100 * stats["cpu_s"] / cpu.wall
        s.client_lag_max = max(stats["lags"], default=float("nan"))
        s.expected = per_agent * agents
        last_recv = first_sent = None
        for run_id in runs:
            seen: set[int] = set()
            last = 0
            for f in self.client.of_run(run_id):
                if f.kind != "text" or not f.body.startswith("L "):
                    continue
                s.batches += f.recv_ns - last > 2_000_000
                last = f.recv_ns
                i, ns = f.body.split()[1:3]
                if int(i) in seen:
                    s.dup += 1
                    continue
                seen.add(int(i))
                s.lat.append((f.recv_ns - int(ns)) / 1e6)
                first_sent = min(first_sent or int(ns), int(ns))
                last_recv = max(last_recv or f.recv_ns, f.recv_ns)
            s.lost += per_agent - len(seen)
        if args.verbose:
            self.stream_timeline(runs)
        s.lat.sort()
        if first_sent and last_recv and last_recv > first_sent:
            s.achieved_rate = len(s.lat) / ((last_recv - first_sent) / 1e9)
        if browsers is not None and s.browsers is not None:
            b = s.browsers
            b.fill(outcomes, per_agent, agents)
            b.server_cpu_s = cpu.used.get("daphne", float("nan"))
            b.server_cpu = s.daphne_cpu
            # Every line daphne put on a socket of the thread: the browsers' and the API
            # client's (it watches the same thread).
            b.deliveries = b.received + len(s.lat)
            b.client_cpu = sum(100 * o["cpu_s"] / cpu.wall for o in outcomes)

    def stream_timeline(self, runs: list[int]) -> None:
        """Per 250 ms of print time: lines, and p50/max of print → server write → websocket."""
        from datetime import datetime

        rows: dict[int, list[tuple[float, float]]] = {}
        for run_id in runs:
            for f in self.client.of_run(run_id):
                if f.kind == "text" and f.body.startswith("L ") and f.created_at:
                    ns = int(f.body.split()[2])
                    written = datetime.fromisoformat(f.created_at).timestamp() * 1e9
                    rows.setdefault(ns // 250_000_000, []).append(
                        ((written - ns) / 1e6, (f.recv_ns - written) / 1e6)
                    )
        for key in sorted(rows)[:80]:
            to_db = sorted(a for a, _ in rows[key])
            to_ws = sorted(b for _, b in rows[key])
            log(
                f"  {len(to_db):4d} lines: print → written p50 {percentile(to_db, 50):6.0f} "
                f"max {to_db[-1]:6.0f} ms; written → ws p50 {percentile(to_ws, 50):6.0f} "
                f"max {to_ws[-1]:6.0f} ms"
            )

    # 3. reply → stdin ---------------------------------------------------------------------

    def replies(self, result: Result, count: int, gap: float) -> None:
        self.agent("echo")
        thread_id = self.channel("bench-echo")
        [run_id] = self.start_waiting(["echo"], [thread_id])
        wait_for_quiet(self.stack.args.quiet_wait)
        sent: dict[int, int] = {}
        post_ms: list[float] = []

        def reply(k: int, due_ns: int) -> None:
            sent[k] = time.time_ns()
            t = time.perf_counter()
            self.steer(run_id, f"cmd=echo k={k}")
            post_ms.append((time.perf_counter() - t) * 1000)

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="reply") as pool:
            open_loop(pool, count, 1 / gap, reply)
        result.replies_sent = len(sent)

        def echoed() -> int:
            return sum(
                1
                for f in self.client.of_run(run_id)
                if f.kind == "text" and f.body.startswith("R ")
            )

        with contextlib.suppress(TimeoutError):
            self.client.wait(lambda: echoed() >= count, 30, "the echoes")
        self.steer(run_id, "cmd=quit")
        self.wait_finished([run_id], 60)
        for f in self.client.of_run(run_id):
            if f.kind == "text" and f.body.startswith("R "):
                _, k, got = f.body.split()
                result.reply.append((int(got) - sent[int(k)]) / 1e6)
                result.reply_ws.append((f.recv_ns - sent[int(k)]) / 1e6)
        result.reply.sort()
        result.reply_ws.sort()
        result.reply_post_ms = sorted(post_ms)


def run_sandbox(sandbox: str, args: argparse.Namespace) -> Result:
    result = Result(sandbox=sandbox)
    stack = Stack(f"runs-{sandbox}", args, sandbox=sandbox, sandbox_network=args.sandbox_network)
    client: Client | None = None
    relay: RelayStack | None = None
    try:
        log(f"{sandbox}: starting daphne in {stack.tmp}")
        api = stack.start()
        client = Client()
        bench = Bench(stack, api, client)
        log(f"{sandbox}: daphne pid {stack.pid} on :{stack.port}")

        if args.only in (None, "first"):
            log(f"{sandbox}: mention → first event, {args.mentions} runs (+1 warm-up)")
            bench.first_event(result, args.mentions)
        plans = [("1 agent", "sa", 1, args.rate)] if args.only in (None, "stream") else []
        if plans and args.agents > 1:
            plans.append((f"{args.agents} agents", "sb", args.agents, args.rate / args.agents))
            if args.heavy:
                plans.append((f"{args.agents} agents (heavy)", "sc", args.agents, args.rate))
        for label, prefix, agents, rate_each in plans:
            # The target's shape (--agents sharing --rate) goes to --viewers browsers too.
            viewers = args.viewers if prefix == "sb" else 0
            log(f"{sandbox}: stdout → websocket, {label} × {rate_each:g} lines/s"
                + (f", {viewers} browser viewers" if viewers else ""))  # fmt: skip
            try:
                stream = bench.stream(label, prefix, agents, rate_each, viewers)
            except (RuntimeError, TimeoutError) as exc:
                log(f"{sandbox}: {label}: {exc}")
                result.streams.append(
                    Stream(label, agents, rate_each, args.seconds, error=str(exc)[:300])
                )
                continue
            result.streams.append(stream)
            if viewers:
                log(f"{sandbox}: the same through the bare relay, {viewers} viewers")
                try:
                    if relay is None:
                        relay = RelayStack(args, lines=True)
                        relay.start()
                    stream.relay = relay_stream(relay, args, agents, rate_each)
                except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
                    log(f"{sandbox}: relay: {exc}")
                    stream.relay = Fanout(viewers=viewers, error=str(exc)[:300])
        if args.only in (None, "reply"):
            log(f"{sandbox}: reply → stdin, {args.replies} replies every {args.reply_gap:g} s")
            bench.replies(result, args.replies, args.reply_gap)
        stats = client.stats()
        if stats["errors"]:
            result.notes.append(f"websocket errors: {stats['errors'][:3]}")
    except Exception as exc:
        stack.note_error(sandbox, exc, result.notes)
    finally:
        if client is not None:
            client.close()
        if relay is not None:
            relay.close()
        stack.close()
    return result


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def report(results: list[Result], args: argparse.Namespace) -> str:
    def f(x: float) -> str:
        return "-" if x != x else f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}"

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else "PASS" if ok else "FAIL"

    header = ["", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "lost", "target", "result"]
    lines = [
        f"runs bench — {machine_line()}",
        f"image {args.image_note}; embedded daphne, SQLite, embedded (no Redis) channel layer, "
        f"in-process dispatch ({args.workers} workers); agents' streams: 1 × {args.rate:g}/s, "
        f"{args.agents} × {args.rate / args.agents:g}/s"
        + (f" in one channel → {args.viewers} browsers" if args.viewers else "")
        + (f", {args.agents} × {args.rate:g}/s" if args.heavy else "")
        + f", {args.seconds:g} s each",
    ]
    for r in results:
        rows: list[list[str]] = []

        def row(name: str, v: list[float], lost: str = "", target: str = "",
                ok: bool | None = None, rows: list[list[str]] = rows) -> None:  # fmt: skip
            rows.append([
                name, str(len(v)), f(percentile(v, 50)), f(percentile(v, 95)),
                f(percentile(v, 99)), f(v[-1] if v else float("nan")), lost, target, verdict(ok),
            ])  # fmt: skip

        first_ok = bool(r.first) and percentile(r.first, 50) < TARGET_FIRST_P50_MS
        row("mention → first agent event (ws)", r.first, "", "p50 < 1000", first_ok if r.first
            else False)  # fmt: skip
        row("  mention → 'picked this up' (ws)", r.picked)
        row("  mention → agent process running", r.started)
        for s in r.streams:
            ok = (not s.error and s.lost == 0 and s.dup == 0 and bool(s.lat)
                  and percentile(s.lat, 99) < TARGET_LINE_P99_MS)  # fmt: skip
            row(f"line → ws: {s.agents} × {s.rate_each:g}/s = {s.agents * s.rate_each:g}/s"
                + (", one thread" if s.browsers else ""),
                s.lat, f"{s.lost}/{s.expected}", "p99 < 250, 0 lost", ok)  # fmt: skip
            if (b := s.browsers) is not None:
                row(f"line → browser: same, {b.viewers} viewers", b.lat, f"{b.lost}/{b.expected}",
                    "p99 < 250, 0 lost", b.ok)  # fmt: skip
            if (rl := s.relay) is not None:
                row(f"  bare relay: line → viewer, {rl.viewers} viewers", rl.lat,
                    f"{rl.lost}/{rl.expected}")  # fmt: skip
        reply_ok = (bool(r.reply) and len(r.reply) == r.replies_sent
                    and percentile(r.reply, 99) < TARGET_REPLY_P99_MS)  # fmt: skip
        row("reply POST → agent's stdin", r.reply, f"{r.replies_sent - len(r.reply)}/"
            f"{r.replies_sent}", "p99 < 250", reply_ok)  # fmt: skip
        row("  reply POST → echo on ws", r.reply_ws)
        row("  reply POST (HTTP 201) itself", r.reply_post_ms)
        widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
        sep = "-" * (sum(widths) + 3 * (len(widths) - 1))
        lines += ["", f"sandbox: {r.sandbox}", sep]
        for x in [header, *rows]:
            lines.append(" | ".join(
                x[i].ljust(widths[i]) if i == 0 else x[i].rjust(widths[i]) for i in range(len(x))
            ))  # fmt: skip
        lines.append(sep)
        lines.append(f"  first-event warm-up run (not counted): {f(r.first_warm_up)} ms")
        for s in r.streams:
            lines.append(
                f"  {s.label}: received {s.achieved_rate:.0f} lines/s in "
                f"{s.batches} batches ({len(s.lat) / max(1, s.batches):.1f} lines each); "
                f"daphne {f(s.daphne_cpu)}% of a core, machine {f(s.machine_cpu)}% "
                f"(busy {f(s.busy_before)}% before), "
                f"ws client {f(s.client_cpu)}% / loop lag max {f(s.client_lag_max)} ms"
                + (f"; ERROR {s.error}" if s.error else "")
            )
            if s.top:
                lines.append(
                    "    busiest (% of a core): "
                    + ", ".join(f"{name}[{pid}] {pct:.0f}" for pct, pid, name in s.top)
                )
            if (b := s.browsers) is not None:
                rl = s.relay or Fanout(viewers=b.viewers, error="not measured")
                lines += [
                    f"  agent output, {s.agents} agents × {s.rate_each:g} lines/s → "
                    f"{b.viewers} browser viewers: server CPU per delivered line: ozweb "
                    f"{f(b.us_per_line)} µs (daphne {b.server_cpu_s:.2f} s for {b.deliveries} "
                    f"lines to {b.connected} browsers + the API client), bare relay "
                    f"{f(rl.us_per_line)} µs ({rl.server_cpu_s:.2f} s for {rl.deliveries} lines "
                    f"to {rl.connected} viewers); ratio {f(s.relay_ratio)}× "
                    f"(target p99 < {TARGET_LINE_P99_MS:g} ms, 0 lost, ≤ "
                    f"{TARGET_RELAY_RATIO:g}× relay CPU): {verdict(s.fanout_ok)}",
                    f"    server % of a core: daphne {f(b.server_cpu)}, relay {f(rl.server_cpu)}; "
                    f"duplicated lines: browsers {b.dup}, relay {rl.dup}; "
                    f"lines per frame: browsers {b.received / max(1, b.frames):.1f}, relay "
                    f"{rl.received / max(1, rl.frames):.1f}; viewers' CPU % {f(b.client_cpu)} / "
                    f"{f(rl.client_cpu)}, loop lag max ms {f(b.client_lag_max)} / "
                    f"{f(rl.client_lag_max)}",
                    f"    through the runs' ends too (not in the ratio): daphne "
                    f"{s.daphne_cpu_with_ends:.2f} s, "
                    f"{f(1e6 * s.daphne_cpu_with_ends / max(1, b.deliveries))} µs per line",
                ]
                lines += [
                    f"    {x}: {e}" for x, e in (("ozweb", b.error), ("relay", rl.error)) if e
                ]
        lines += [f"  {note}" for note in r.notes]
    return "\n".join(lines)


def passed(r: Result) -> bool:
    return (
        not any(n.startswith("ERROR") for n in r.notes)
        and bool(r.first)
        and percentile(r.first, 50) < TARGET_FIRST_P50_MS
        and all(
            not s.error
            and s.lost == 0
            and s.lat
            and percentile(s.lat, 99) < TARGET_LINE_P99_MS
            and s.fanout_ok is not False
            for s in r.streams
        )
        and bool(r.reply)
        and len(r.reply) == r.replies_sent
        and percentile(r.reply, 99) < TARGET_REPLY_P99_MS
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.runs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sandbox", choices=["docker", "local", "both"], default="docker")
    parser.add_argument("--mentions", type=int, default=10, help="runs for mention → first event")
    parser.add_argument("--rate", type=float, default=1000.0, help="total stdout lines/s")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each stream")
    parser.add_argument("--agents", type=int, default=10, help="concurrent agents (share --rate)")
    parser.add_argument("--heavy", action="store_true", help="also --agents × --rate each")
    parser.add_argument("--replies", type=int, default=50)
    parser.add_argument("--reply-gap", type=float, default=0.1, help="seconds between replies")
    parser.add_argument(
        "--viewers",
        type=int,
        default=20,
        help="browser viewers of the --agents stream's thread (0: none, no relay)",
    )
    parser.add_argument("--viewer-procs", type=int, default=1, help="processes for the viewers")
    parser.add_argument(
        "--drain",
        type=float,
        default=15.0,
        help="max s for viewers to get the last lines after the runs end",
    )
    parser.add_argument(
        "--sandbox-network",
        default="",
        help="OZWEB_SANDBOX_NETWORK for docker ('' = the product's isolated "
        "default; 'host' as the tests that need it)",
    )
    stack_options(parser, quiet_wait=20, runs=True)
    parser.add_argument("-v", "--verbose", action="store_true", help="timelines on stderr")
    parser.add_argument("--only", choices=["first", "stream", "reply"], help="one measurement")
    args = parser.parse_args(argv)
    if not (1 <= args.mentions <= 200 and 1 <= args.agents <= 40 and 0 < args.rate <= 20_000):
        parser.error("mentions 1–200, agents 1–40, rate 0–20000")
    if not (0 < args.seconds <= 60 and 1 <= args.replies <= 2000 and 0 < args.reply_gap <= 10):
        parser.error("seconds 0–60, replies 1–2000, reply-gap 0–10")
    if not (0 <= args.viewers <= 1000 and 1 <= args.viewer_procs <= 8 and 0 < args.drain <= 120):
        parser.error("viewers 0–1000, viewer-procs 1–8, drain 0–120")
    args.viewer_procs = min(args.viewer_procs, max(1, args.viewers))
    args.workers = args.workers or args.agents + 2
    sandboxes = ["docker", "local"] if args.sandbox == "both" else [args.sandbox]
    args.image_note = "-"
    if "docker" in sandboxes:
        image = require_harness_image(parser)
        args.image_note = f"{HARNESS_IMAGE} {image[7:19]} (cached)"

    return run_each(sandboxes, run_sandbox, report, args, passed=passed)


if __name__ == "__main__":
    sys.exit(main())
