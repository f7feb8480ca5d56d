"""Agent-run latency benchmark: mention → first event, stdout line → websocket, reply → stdin.

    .venv/bin/python -m bench.runs [--sandbox docker|local|both] [--mentions 10]
                                   [--rate 1000] [--seconds 3] [--agents 10] [--heavy]
                                   [--replies 50] [--reply-gap 0.1]

It starts the real app the way `make run` does (embedded mode): one `daphne` process on
127.0.0.1, a fresh SQLite database in a temp dir, the embedded channel layer, in-process run
dispatch, `OZWEB_SANDBOX=docker` (or `local`) with `OZWEB_SANDBOX_NETWORK=host`. It creates a
user and token with `manage.py create_api_user`, and `command`-harness agents through the REST
API whose program (below, stdlib only) is passed inline: the agent's environment holds the
source and its command is `python3 -u -c "$BENCH_AGENT"` (the executor runs it through `sh -c`),
so the cached harness image needs nothing extra.

Clocks: the agent stamps `time.time_ns()` into what it prints and into what it echoes; a
container shares the host kernel's clock, so those stamps compare directly with the client's.
The websocket client (`/ws/v1/threads/{id}/?token=…`, the `websockets` library) lives in its
own process and stamps every frame on receipt, so the HTTP posting never delays a receipt.

Measured, each against the spec's target on this machine:

1. mention → first agent event on the websocket: post `@agent cmd=quit` to a channel, time to
   the first non-status message the agent authors (the program prints it as its first act),
   and to the "picked this up" status. `--mentions` runs, each a new run and container, after
   one unmeasured warm-up. Target p50 < 1 s.
2. stdout line → websocket: the agent prints `{"type":"text","text":"L <i> <ns>"}` on an
   open-loop schedule (`--rate` lines/s for `--seconds`), one agent; then `--agents` agents
   at once, each in its own channel and container, sharing the same total rate (10 × 100/s);
   `--heavy` adds 10 agents × `--rate` each (10,000 lines/s: beyond what one embedded daphne
   ingests, ~1,000/s on 2 cores, so not in the defaults). The streams start together: every
   agent first says it is ready, then gets a steering message with a common start time.
   Target p99 < 250 ms, nothing lost.
3. human reply → bytes on the agent's stdin: `POST /api/v1/runs/{id}/messages/` every
   `--reply-gap` s; the agent stamps each `user` line as it reads it and echoes the stamp.
   Target p99 < 250 ms. The echo's arrival on the websocket (round trip) is shown too.

Everything listens on 127.0.0.1; every wait is bounded. Daphne, the containers of this run
(label dev.ozweb.instance=<unique>), the client process and the temp dirs are cleaned up on
exit, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import resource
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bench.stack import (
    FINISHED,
    HARNESS_IMAGE,
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

# The benchmark agent (runs inside the container; Python 3 standard library only).
#   at start:          F <ns>                       (its first event)
#   cmd=echo k=K:      R <K> <ns when the line was read from stdin>
#   cmd=stream rate=R secs=S start=NS [then=quit]:  L <i> <ns> lines, open loop, then D <n>
#   cmd=quit / EOF:    a result line, exit 0
AGENT_CODE = r"""
import json, re, sys, time
w = sys.stdout.write
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
            w('{"type": "text", "text": "L %d %d"}\n' % (i, time.time_ns()))
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
    machine_cpu: float = float("nan")  # % of the machine
    client_cpu: float = float("nan")
    client_lag_max: float = float("nan")
    busy_before: float = float("nan")
    top: list[tuple[float, int, str]] = field(default_factory=list)  # busiest processes
    batches: int = 0  # bursts the lines arrived in (a gap over 2 ms starts a new one), ≈ flushes
    error: str = ""


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

    def agent(self, handle: str) -> dict[str, Any]:
        return self.api.create_command_agent(
            self.team, handle, AGENT_CODE, python=self.stack.agent_python, run_timeout=600
        )

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

    def stream(self, label: str, prefix: str, agents: int, rate_each: float) -> Stream:
        args = self.stack.args
        s = Stream(label=label, agents=agents, rate_each=rate_each, seconds=args.seconds)
        handles = [f"{prefix}{k}" for k in range(agents)]
        threads = []
        for h in handles:
            self.agent(h)
            threads.append(self.channel(f"bench-{h}"))
        runs = self.start_waiting(handles, threads)
        s.busy_before = wait_for_quiet(args.quiet_wait)
        cpu = CpuWatch({"daphne": [self.stack.pid]})
        self.client.stats()  # reset the client's CPU and lag counters
        cpu.begin()
        profiler = self.stack.profile(f"stream-{prefix}", args.seconds + 1)
        start_ns = time.time_ns() + int(0.3e9) + agents * int(0.05e9)
        command = f"cmd=stream rate={rate_each:g} secs={args.seconds:g} start={start_ns} then=quit"
        for run_id in runs:
            self.steer(run_id, command)
        self.wait_finished(runs, args.seconds + 60)
        cpu.end()
        if profiler is not None:
            profiler.wait(timeout=60)
        stats = self.client.stats()
        s.daphne_cpu, s.machine_cpu = cpu.percent("daphne"), cpu.machine_percent()
        s.top = cpu.top[:6]
        s.client_cpu = 100 * stats["cpu_s"] / cpu.wall
        s.client_lag_max = max(stats["lags"], default=float("nan"))
        per_agent = int(args.seconds * rate_each)
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
                _, i, ns = f.body.split()
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
        return s

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
    stack = Stack(f"runs-{sandbox}", args, sandbox=sandbox)
    client: Client | None = None
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
            log(f"{sandbox}: stdout → websocket, {label} × {rate_each:g} lines/s")
            try:
                result.streams.append(bench.stream(label, prefix, agents, rate_each))
            except (RuntimeError, TimeoutError) as exc:
                log(f"{sandbox}: {label}: {exc}")
                result.streams.append(
                    Stream(label, agents, rate_each, args.seconds, error=str(exc)[:300])
                )
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
            row(f"line → ws: {s.agents} × {s.rate_each:g}/s = {s.agents * s.rate_each:g}/s",
                s.lat, f"{s.lost}/{s.expected}", "p99 < 250, 0 lost", ok)  # fmt: skip
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
        lines += [f"  {note}" for note in r.notes]
    return "\n".join(lines)


def passed(r: Result) -> bool:
    return (
        not any(n.startswith("ERROR") for n in r.notes)
        and bool(r.first)
        and percentile(r.first, 50) < TARGET_FIRST_P50_MS
        and all(
            not s.error and s.lost == 0 and s.lat and percentile(s.lat, 99) < TARGET_LINE_P99_MS
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
    stack_options(parser, quiet_wait=20, runs=True)
    parser.add_argument("-v", "--verbose", action="store_true", help="timelines on stderr")
    parser.add_argument("--only", choices=["first", "stream", "reply"], help="one measurement")
    args = parser.parse_args(argv)
    if not (1 <= args.mentions <= 200 and 1 <= args.agents <= 40 and 0 < args.rate <= 20_000):
        parser.error("mentions 1–200, agents 1–40, rate 0–20000")
    if not (0 < args.seconds <= 60 and 1 <= args.replies <= 2000 and 0 < args.reply_gap <= 10):
        parser.error("seconds 0–60, replies 1–2000, reply-gap 0–10")
    args.workers = args.workers or args.agents + 2
    sandboxes = ["docker", "local"] if args.sandbox == "both" else [args.sandbox]
    args.image_note = "-"
    if "docker" in sandboxes:
        image = require_harness_image(parser)
        args.image_note = f"{HARNESS_IMAGE} {image[7:19]} (cached)"

    return run_each(sandboxes, run_sandbox, report, args, passed=passed)


if __name__ == "__main__":
    sys.exit(main())
