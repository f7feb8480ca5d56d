"""Live-feed benchmark: post→delivered latency for N websocket viewers of one thread.

    .venv/bin/python -m bench.feed [--viewers 200] [--rate 20] [--messages 400]
                                   [--layers memory,redis] [--client-procs 1]

First the reference, `relay` (bench/references.py: a bare `websockets` broadcast relay, no
framework, no database), with the same viewers, poster and schedule; the report gives each
layer's server CPU per delivered message over the relay's. Then for each channel layer it
starts the real app (a `daphne` process, as in production):

* memory: InMemoryChannelLayer, a fresh SQLite database in a temp dir;
* redis:  channels_redis on redis://127.0.0.1:6379/<--redis-db> with a unique key prefix, and a
          throwaway PostgreSQL database `ozweb_bench_<pid>` (`--redis-db-engine sqlite` to use
          SQLite instead). Both are removed at the end.

It runs `migrate` and `create_api_user`, creates a channel through the REST API, connects N
viewers to `/ws/v1/threads/{id}/?since=0&token=…` (bench/wire.py's cheap readers, in
`--client-procs` separate asyncio processes so the poster never shares a loop with them), and
posts M messages through `POST /api/v1/threads/{id}/messages/` (which calls
`services.message_post`) on an open-loop fixed-rate schedule from a small pool of keep-alive
`http.client` connections. Each body carries its send time (`time.time_ns()`, same clock on
the same machine); each viewer computes latency on receipt and checks the `seq` stream for lost,
duplicated and out-of-order messages against the seqs the POSTs returned.

The client is watched, not trusted: the table shows client CPU and event-loop lag next to
the server's, so a client-side bottleneck is visible rather than measured as latency.
Everything listens on 127.0.0.1; every loop is bounded in count and time; processes, temp dirs,
the PostgreSQL database and the Redis keys are cleaned up on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import resource
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.references import RelayStack
from bench.stack import (
    Api,
    CpuWatch,
    LoopLag,
    Stack,
    fmt,
    log,
    open_loop,
    pair,
    percentile,
    run_each,
    stack_options,
    table,
    wait_for_quiet,
)
from bench.wire import FeedReader, open_reader

# Target (the spec): 200 viewers at 20 posts/s, p99 < 250 ms, nothing lost, and server CPU per
# delivered message (posts included) at most 4× a bare relay's, measured in the same run.
TARGET_P99_MS = 250.0
TARGET_RELAY_RATIO = 4.0


# ---------------------------------------------------------------------------------------------
# Viewers: a separate process each holding a slice of the websockets
# ---------------------------------------------------------------------------------------------


@dataclass
class ViewerLog:
    seqs: list[int] = field(default_factory=list)
    # (seq, recv_ns, body) for every frame; parsed after the run, not on the hot path.
    frames: list[tuple[int, int, str]] = field(default_factory=list)
    error: str = ""


def viewer_target(args: argparse.Namespace, notes: list[str]) -> Any:
    """The viewer processes' function for `--viewer`: the C viewers (bench/native.py) unless
    they cannot be built here, then the Python ones, with a note saying why."""
    if args.viewer == "native":
        from bench.native import available, native_viewer_process

        why = available()
        if not why:
            return native_viewer_process
        notes.append(f"C viewers unavailable ({why}): Python viewers instead")
    return viewer_process


def viewer_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--viewer", choices=["native", "python"], default="native",
        help="the viewers' client: bench/viewer.c (compiled here with cc) or bench/wire.py",
    )  # fmt: skip


def viewer_process(conn: Any, url: str, count: int, connect_concurrency: int, drain: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and cleanup
    try:
        import uvloop

        result = uvloop.run(_viewers_main(conn, url, count, connect_concurrency, drain))
    except Exception as exc:  # report, never hang the parent
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
    with contextlib.suppress(Exception):
        conn.send(("result", result))


async def _viewers_main(
    conn: Any, url: str, count: int, connect_concurrency: int, drain: float
) -> dict[str, Any]:
    """`count` cheap viewers (bench.wire): frames are stamped as they arrive and parsed only
    once the posts are done, so that the viewers take as little CPU from the servers as they
    can while the posts are sent."""
    loop = asyncio.get_running_loop()
    logs = [ViewerLog() for _ in range(count)]
    readers: list[FeedReader | None] = [None] * count
    gate = asyncio.Semaphore(connect_concurrency)

    async def open_one(i: int) -> None:
        async with gate:
            for attempt in range(3):
                try:
                    readers[i] = await open_reader(url)
                    logs[i].error = ""
                    return
                except Exception as exc:
                    logs[i].error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(0.2 * (attempt + 1))

    lag = LoopLag()
    stop = asyncio.Event()

    await asyncio.gather(*(open_one(i) for i in range(count)))
    open_ = [(i, r) for i, r in enumerate(readers) if r is not None]
    conn.send(("ready", len(open_), [v.error for v in logs if v.error][:5]))

    # start → (record CPU), then done(expected seqs) → wait until every viewer has them all.
    msg = await loop.run_in_executor(None, conn.recv)
    assert msg[0] == "start", msg
    monitor = asyncio.create_task(lag.run(stop))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    msg = await loop.run_in_executor(None, conn.recv)
    assert msg[0] == "done", msg
    # The lag is of the posting window: what follows parses every frame, blocking the loop.
    stop.set()
    expected = set(msg[1])
    parsed = [0] * count
    got: list[set[int]] = [set() for _ in range(count)]
    waiting = dict(open_)
    deadline = loop.time() + drain
    while True:
        for i, reader in list(waiting.items()):
            frames, vlog = reader.frames, logs[i]
            for now, raw in frames[parsed[i] :]:
                frame = json.loads(raw)
                if frame.get("type") == "message.created":
                    message = frame["message"]
                    vlog.frames.append((message["seq"], now, message["body"]))
                    got[i].add(message["seq"])
            parsed[i] = len(frames)
            if expected <= got[i] or reader.error:
                vlog.error = reader.error
                del waiting[i]
        if not waiting or loop.time() > deadline:
            break
        await asyncio.sleep(0.02)
    t1 = time.monotonic()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(monitor, return_exceptions=True)
    for i, reader in open_:
        logs[i].error = logs[i].error or reader.error
        reader.close()

    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {
        "connected": len(open_),
        "errors": [v.error for v in logs if v.error],
        "frames": [v.frames if readers[i] is not None else None for i, v in enumerate(logs)],
        "cpu_s": cpu,
        "wall_s": t1 - t0,
        "lag_ms": sorted(lag.ms),
    }


# ---------------------------------------------------------------------------------------------
# One layer: start the app, run the load, collect the figures
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    layer: str
    db: str
    viewers: int
    connected: int = 0
    rate_target: float = 0.0
    rate_achieved: float = 0.0
    messages: int = 0
    posted_ok: int = 0
    post_errors: int = 0
    expected: int = 0
    received: int = 0
    deliveries_per_s: float = 0.0
    lat: list[float] = field(default_factory=list)
    lost: int = 0
    dup: int = 0
    ooo: int = 0
    post_ms: list[float] = field(default_factory=list)
    send_late_ms: list[float] = field(default_factory=list)
    server_cpu: float = float("nan")
    redis_cpu: float = float("nan")
    db_cpu: float = float("nan")
    client_cpu: float = float("nan")
    poster_cpu: float = float("nan")
    machine_cpu: float = float("nan")
    others_cpu: float = float("nan")
    irq_cpu: float = float("nan")  # of others_cpu: interrupts and softirqs (loopback TCP)
    server_cpu_s: float = float("nan")
    client_lag_p99: float = float("nan")
    client_lag_max: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.connected == self.viewers
            and self.post_errors == 0
            and self.lost == 0
            and self.dup == 0
            and self.ooo == 0
            and self.lat != []
            and percentile(self.lat, 99) < TARGET_P99_MS
        )


def run_layer(layer: str, args: argparse.Namespace) -> Result:
    stack: Stack | RelayStack
    if layer == "relay":
        # The reference: the same viewers, poster and schedule against a bare relay.
        stack = RelayStack(args)
    else:
        stack = Stack(
            f"feed-{layer}",
            args,
            postgres=layer == "redis" and args.redis_db_engine == "postgres",
            redis_db=args.redis_db if layer == "redis" else None,
        )
    result = Result(layer=layer, db=stack.db_label, viewers=args.viewers, rate_target=args.rate)
    workers: list[tuple[mp.process.BaseProcess, Any]] = []
    try:
        log(f"{layer}: preparing {stack.db_label} in {stack.tmp}")
        api = stack.start()
        log(f"{layer}: server pid {stack.pid}")
        thread_id = api.create_thread(api.team_id(), f"bench-{layer}")
        url = api.feed_url(thread_id, "since=0&")

        # Viewers, split over --client-procs processes.
        ctx = mp.get_context("spawn")
        split = [args.viewers // args.client_procs] * args.client_procs
        for i in range(args.viewers % args.client_procs):
            split[i] += 1
        target = viewer_target(args, result.notes)
        for n in split:
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=target,
                args=(child_end, url, n, args.connect_concurrency, args.drain),
                daemon=True,
            )  # fmt: skip
            proc.start()
            workers.append((proc, parent_end))
        t_connect = time.monotonic()
        for _proc, pipe in workers:
            if not pipe.poll(120):
                raise RuntimeError("viewers did not connect within 120 s")
            kind, *payload = pipe.recv()
            if kind == "result":
                raise RuntimeError(f"viewer process failed: {payload[0]}")
            result.connected += payload[0]
            if payload[1]:
                result.notes.append(f"connect errors: {payload[1]}")
        log(
            f"{layer}: {result.connected}/{args.viewers} viewers streaming "
            f"({time.monotonic() - t_connect:.1f}s)"
        )

        # Warm-up posts (counted for loss/order, not for latency), then the measured run.
        expected: list[int] = []
        pool = ThreadPoolExecutor(max_workers=args.post_concurrency, thread_name_prefix="post")
        warm = post_schedule(api, pool, thread_id, args.warmup, args.rate, "w")
        expected += [seq for seq, *_ in warm if seq is not None]
        time.sleep(1.0)

        watched: dict[str, list[int] | str] = {
            "server": [stack.pid], "poster": [os.getpid()]
        }  # fmt: skip
        if layer == "redis":
            watched["redis"] = "redis-server"
        if stack.pg_db:
            watched["db"] = "postgres"
        cpu = CpuWatch(watched)
        busy = wait_for_quiet(args.quiet_wait)
        if busy > 15:
            result.notes.append(f"machine {busy:.0f}% busy before the run (others' work)")
        for _, pipe in workers:
            pipe.send(("start",))
        cpu.begin()
        profiler = stack.profile("daphne", args.messages / args.rate, rate=200, gil=True)
        posts = post_schedule(api, pool, thread_id, args.messages, args.rate, "m")
        pool.shutdown(wait=True)
        expected += [seq for seq, *_ in posts if seq is not None]
        for _, pipe in workers:
            pipe.send(("done", expected))
        outcomes = []
        for _proc, pipe in workers:
            if not pipe.poll(args.drain + 60):
                raise RuntimeError("viewer process did not report")
            kind, payload = pipe.recv()
            if "fatal" in payload:
                raise RuntimeError(f"viewer process failed: {payload['fatal']}")
            outcomes.append(payload)
        cpu.end()
        if profiler is not None:
            profiler.wait(timeout=120)
            result.notes.append(f"py-spy profile of daphne: {stack.profile_path('daphne')}")

        fill(result, args, posts, expected, outcomes, cpu)
    except Exception as exc:
        stack.note_error(layer, exc, result.notes)
    finally:
        for worker, _ in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join(5)
            if worker.is_alive():
                worker.kill()
        failed = result.lost or result.dup or result.ooo or any("ERROR" in n for n in result.notes)
        stack.close(post_mortem=result.notes if failed else None)
    return result


def post_schedule(
    api: Api, pool: ThreadPoolExecutor, thread_id: int, count: int, rate: float, tag: str
) -> list[tuple[int | None, int, float, float]]:
    """Post `count` messages on an open-loop schedule; (seq, sent_ns, http_ms, late_ms) each."""
    path = f"/api/v1/threads/{thread_id}/messages/"

    def post(i: int, due_ns: int) -> tuple[int | None, int, float, float]:
        sent_ns = time.time_ns()
        late = (sent_ns - due_ns) / 1e6
        t = time.perf_counter()
        try:
            status, body = api.request("POST", path, {"body": f"bench {tag}{i} {sent_ns}"})
        except (OSError, http.client.HTTPException) as exc:
            log(f"post {tag}{i}: {exc}")
            return None, sent_ns, (time.perf_counter() - t) * 1000, late
        took = (time.perf_counter() - t) * 1000
        if status != 201:
            log(f"post {tag}{i}: HTTP {status} {str(body)[:200]}")
            return None, sent_ns, took, late
        return body["seq"], sent_ns, took, late

    return open_loop(pool, count, rate, post)


def fill(
    result: Result,
    args: argparse.Namespace,
    posts: list[tuple[int | None, int, float, float]],
    expected: list[int],
    outcomes: list[dict[str, Any]],
    cpu: CpuWatch,
) -> None:
    ok = [p for p in posts if p[0] is not None]
    result.messages = len(posts)
    result.posted_ok = len(ok)
    result.post_errors = len(posts) - len(ok)
    sends = sorted(p[1] for p in posts)
    if len(sends) > 1:
        result.rate_achieved = (len(sends) - 1) / ((sends[-1] - sends[0]) / 1e9)
    result.post_ms = sorted(p[2] for p in posts)
    result.send_late_ms = sorted(p[3] for p in posts)
    expected_set = set(expected)
    measured = {p[0] for p in ok}
    first_send = sends[0] if sends else 0
    last_recv = first_send
    lat: list[float] = []
    received = 0
    gaps: list[str] = []
    for outcome in outcomes:
        for frames in outcome["frames"]:
            if frames is None:  # never connected: everything it should have got is lost
                result.lost += len(expected_set)
                continue
            seen: set[int] = set()
            high = 0
            for seq, recv_ns, body in frames:
                if seq in seen:
                    result.dup += 1
                    continue
                if seq < high:
                    result.ooo += 1
                high = max(high, seq)
                seen.add(seq)
                if seq in measured:
                    received += 1
                    sent_ns = int(body.rsplit(" ", 1)[1])
                    lat.append((recv_ns - sent_ns) / 1e6)
                    last_recv = max(last_recv, recv_ns)
            missing = expected_set - seen
            result.lost += len(missing)
            if missing:
                gaps.append(_ranges(sorted(missing)))
    result.expected = len(measured) * result.viewers
    if gaps:
        result.notes.append(f"{len(gaps)} viewers lost messages, e.g. seqs {gaps[:3]}")
    errors = [e for o in outcomes for e in o["errors"]]
    if errors:
        result.notes.append(f"{len(errors)} viewer sockets failed, e.g. {errors[:2]}")
    result.received = received
    if last_recv > first_send:
        result.deliveries_per_s = received / ((last_recv - first_send) / 1e9)
    result.lat = sorted(lat)
    result.server_cpu = cpu.percent("server")
    result.server_cpu_s = cpu.used.get("server", float("nan"))
    result.poster_cpu = cpu.percent("poster")
    result.redis_cpu = cpu.percent("redis") if "redis" in cpu.pids else float("nan")
    result.db_cpu = cpu.percent("db") if "db" in cpu.pids else float("nan")
    result.machine_cpu = cpu.machine_percent()
    result.client_cpu = sum(100 * o["cpu_s"] / cpu.wall for o in outcomes)
    # Everything else on the machine (other people's builds and tests): the noise floor.
    ours = sum(
        x for x in (result.server_cpu, result.poster_cpu, result.redis_cpu, result.db_cpu) if x == x
    )
    cores = os.cpu_count() or 1
    result.others_cpu = max(0.0, result.machine_cpu * cores - ours - result.client_cpu)
    result.irq_cpu = cpu.percent("_irq")
    result.notes.append(f"busiest processes (% of a core): {cpu.busiest(8)}")
    lags = sorted(x for o in outcomes for x in o["lag_ms"])
    result.client_lag_p99 = percentile(lags, 99)
    result.client_lag_max = lags[-1] if lags else float("nan")


def _ranges(seqs: list[int]) -> str:
    """[1, 2, 3, 7] → '1-3,7'."""
    out: list[str] = []
    last = -2
    for seq in seqs:
        if out and seq == last + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{seq}"
        else:
            out.append(str(seq))
        last = seq
    return ",".join(out)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def us_per_delivery(r: Result) -> float:
    return 1e6 * r.server_cpu_s / r.received if r.received else float("nan")


def relay_ratio(r: Result, results: list[Result]) -> float:
    """Server CPU per delivered message, posts included, over the relay's in the same run."""
    relay = next((x for x in results if x.layer == "relay"), None)
    if relay is None or r is relay:
        return float("nan")
    return us_per_delivery(r) / us_per_delivery(relay)


def passed(r: Result, results: list[Result]) -> bool:
    ratio = relay_ratio(r, results)
    return r.passed and (ratio != ratio or ratio <= TARGET_RELAY_RATIO)  # nan: no relay ran


def report(results: list[Result], args: argparse.Namespace) -> str:
    rows: list[tuple[str, list[str]]] = [
        ("channel layer", [r.layer for r in results]),
        ("database", [r.db for r in results]),
        ("viewers connected", [f"{r.connected}/{r.viewers}" for r in results]),
        (
            "posts/s target / achieved",
            [pair(r.rate_target, r.rate_achieved, "{:g}") for r in results],
        ),
        ("messages posted ok / errors", [f"{r.posted_ok} / {r.post_errors}" for r in results]),
        ("deliveries expected", [str(r.expected) for r in results]),
        ("deliveries received", [str(r.received) for r in results]),
        ("deliveries/s", [fmt(r.deliveries_per_s, "{:.0f}") for r in results]),
        ("latency p50 ms", [fmt(percentile(r.lat, 50)) for r in results]),
        ("latency p95 ms", [fmt(percentile(r.lat, 95)) for r in results]),
        ("latency p99 ms", [fmt(percentile(r.lat, 99)) for r in results]),
        ("latency max ms", [fmt(r.lat[-1] if r.lat else float("nan")) for r in results]),
        ("lost", [str(r.lost) for r in results]),
        ("duplicated", [str(r.dup) for r in results]),
        ("out of order", [str(r.ooo) for r in results]),
        (
            "POST p50 / p99 ms",
            [pair(percentile(r.post_ms, 50), percentile(r.post_ms, 99)) for r in results],
        ),
        ("post send late p99 ms", [fmt(percentile(r.send_late_ms, 99)) for r in results]),
        ("CPU server % of a core", [fmt(r.server_cpu, "{:.0f}") for r in results]),
        (
            "server CPU µs/delivery (+posts)",
            [fmt(us_per_delivery(r), "{:.0f}") for r in results],
        ),
        (
            "server CPU per delivery ÷ relay's",
            [fmt(relay_ratio(r, results), "{:.2f}×") for r in results],
        ),
        ("CPU redis / db % of a core", [pair(r.redis_cpu, r.db_cpu, "{:.0f}") for r in results]),
        ("CPU viewers / poster %", [pair(r.client_cpu, r.poster_cpu, "{:.0f}") for r in results]),
        ("CPU machine % (all cores)", [fmt(r.machine_cpu, "{:.0f}") for r in results]),
        ("CPU not ours % of a core", [fmt(r.others_cpu, "{:.0f}") for r in results]),
        ("  of which irq+softirq %", [fmt(r.irq_cpu, "{:.0f}") for r in results]),
        (
            "client loop lag p99 / max ms",
            [pair(r.client_lag_p99, r.client_lag_max) for r in results],
        ),
        (
            f"target p99<{TARGET_P99_MS:g}ms, 0 lost, ≤{TARGET_RELAY_RATIO:g}× relay CPU",
            ["PASS" if passed(r, results) else "FAIL" for r in results],
        ),
    ]
    lines = [
        f"feed bench: {args.viewers} viewers, {args.rate:g} posts/s, {args.messages} messages "
        f"(+{args.warmup} warm-up), {os.cpu_count()} CPUs, viewer procs {args.client_procs}",
        *table(rows),
    ]
    for r in results:
        lines += [f"{r.layer}: {note}" for note in r.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="posts per second")
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument(
        "--layers",
        default="relay,memory,redis",
        help="relay (the bare websockets reference), memory (the embedded layer), redis",
    )
    parser.add_argument("--warmup", type=int, default=10, help="posts before the measured run")
    parser.add_argument("--client-procs", type=int, default=1, help="processes for the viewers")
    viewer_option(parser)
    parser.add_argument("--post-concurrency", type=int, default=8, help="HTTP connections")
    parser.add_argument("--connect-concurrency", type=int, default=25)
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for stragglers")
    parser.add_argument("--redis-db", type=int, default=0)
    parser.add_argument("--redis-db-engine", choices=["postgres", "sqlite"], default="postgres")
    stack_options(parser, quiet_wait=60, runs=False)
    args = parser.parse_args(argv)
    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    if not layers or set(layers) - {"relay", "memory", "redis"}:
        parser.error("--layers takes relay, memory, redis")
    if not (1 <= args.viewers <= 5000 and 0 < args.rate <= 1000 and 1 <= args.messages <= 100_000):
        parser.error("viewers 1–5000, rate 0–1000, messages 1–100000")
    args.client_procs = max(1, min(args.client_procs, args.viewers))

    results: list[Result] = []

    def run_and_keep(layer: str, args: argparse.Namespace) -> Result:
        results.append(run_layer(layer, args))
        return results[-1]

    return run_each(layers, run_and_keep, report, args, passed=lambda r: passed(r, results))


if __name__ == "__main__":
    sys.exit(main())
