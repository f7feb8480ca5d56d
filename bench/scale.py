"""Scale-out benchmark: saturation throughput of 1 and of 2 ozweb server processes behind the
Redis channel layer, on this machine, and the ratio of the two.

    .venv/bin/python -m bench.scale [--viewers 200] [--servers 1,2] [--step-seconds 4]
                                    [--rates 5,10,20,40,60,80,100,120,160,200,250,300]
                                    [--refine 2] [--retries 1] [--client-procs 2]
                                    [--post-concurrency 48] [--viewer native|python]

Target (the spec): two server processes deliver at least 1.7× the saturation throughput of one.

For each server count N it starts ozweb scaled out (`bench.stack.ScaledStack`): a throwaway
PostgreSQL database `ozweb_scale_<pid>_<hex>`, channels_redis on redis://127.0.0.1:6379/
<--redis-db> (11) with every key under a unique prefix, and N `daphne` processes, each on its
own port, as `bench.stack.start_daphne` starts them (the user throttle is lifted: one user posts
thousands of messages a minute here). All the stacks are up at once and their steps are taken
in turn (a step of 1 server, a step of 2, ...), so that others' work on this shared machine
falls on both curves alike. Each curve raises the posting rate step by step. Each step
creates a fresh thread, connects the viewers to `/ws/v1/threads/{id}/?since=0` split evenly
across the N servers (as a load balancer would; `--client-procs` viewer processes, the same
number for every N, process j on server j mod N), posts `--warmup` messages, then posts
rate × `--step-seconds` messages through `POST /api/v1/threads/{id}/messages/` on an open-loop
schedule, each request to the next server in turn. The viewers, the poster and the checks
(latency from the send time in the body, lost, duplicated and out-of-order seqs) are
bench/feed.py's, imported from it: by default the C viewers (bench/viewer.c, `--viewer`).

A step passes with every viewer connected, no failed post, nothing lost, duplicated or out of
order, the posts sent at ≥ 90 % of the rate asked (a server that cannot take them shows here)
and p99 post→delivered under 250 ms. A failing step is run once more (`--retries`), since the
machine is shared; if it fails again the ladder stops there and `--refine` bisection steps
between the last passing rate and the failing one find the knee more closely. Saturation
throughput is the deliveries/s of the highest-rate step that passed. The report prints each
curve (rate, achieved, deliveries/s, p50/p99, lost, server CPU in all, per process and per
delivery with the posts included, Redis and PostgreSQL CPU, viewers' and poster's CPU, the
machine's, and what is not ours) and the ratio of the two saturation throughputs against the
target.

Both curves share the machine's two cores with the viewers, the poster, Redis and PostgreSQL
(their CPU is in the table): two servers cannot have two whole cores, which is the point of
measuring it here. The machine is shared with others too: "not ours" (all the machine's CPU
but the servers', viewers', poster's, Redis's and PostgreSQL's; in brackets the part of it
that is interrupts and softirqs, where the kernel's loopback TCP work lands, charged to no
process), a `*` on steps where it was over 25 % of a core, "machine % busy before the
step" notes and the busiest processes say when someone else's work was in a step.

Everything listens on 127.0.0.1; every wait is bounded; the servers, viewer processes, the
database, the Redis keys and the temp dirs are removed on exit, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.feed import (
    TARGET_P99_MS,
    fill,
    post_schedule,
    us_per_delivery,
    viewer_option,
    viewer_target,
)
from bench.feed import Result as StepResult
from bench.stack import (
    Api,
    CpuWatch,
    ScaledStack,
    fmt,
    log,
    machine_line,
    pair,
    percentile,
    run_each,
    stack_options,
    table,
    wait_for_quiet,
)

TARGET_RATIO = 1.7
MIN_RATE_SHARE = 0.9  # posts sent / posts asked for a step to pass
NOISY = 25.0  # % of a core used by others during a step: marked in the curve


class Spread(Api):
    """The REST API of every server process, each request to the next one in turn (round robin,
    as a load balancer would); keep-alive connections per server and per thread."""

    def __init__(self, apis: list[Api]) -> None:
        super().__init__(apis[0].port, apis[0].token)
        self.apis = apis
        self.turn = itertools.count()  # next() is atomic under the GIL

    def request(
        self, method: str, path: str, body: Any = None, *, authorization: str = ""
    ) -> tuple[int, Any]:
        api = self.apis[next(self.turn) % len(self.apis)]
        return api.request(method, path, body, authorization=authorization)


@dataclass
class Step:
    rate: float
    attempt: int
    result: StepResult
    per_server_cpu: list[float] = field(default_factory=list)
    busy_before: float = float("nan")

    @property
    def passed(self) -> bool:
        r = self.result
        return r.passed and r.rate_achieved >= MIN_RATE_SHARE * r.rate_target


@dataclass
class Curve:
    servers: int
    db: str = ""
    steps: list[Step] = field(default_factory=list)
    reached: bool = False  # a step failed: the saturation is the knee, not a lower bound
    notes: list[str] = field(default_factory=list)

    @property
    def saturation(self) -> Step | None:
        """The highest-rate step that passed."""
        ok = [s for s in self.steps if s.passed]
        return max(ok, key=lambda s: s.rate) if ok else None

    @property
    def throughput(self) -> float:
        best = self.saturation
        return best.result.deliveries_per_s if best else float("nan")

    @property
    def passed(self) -> bool:
        return bool(self.steps) and not any(n.startswith("ERROR") for n in self.notes)


# ---------------------------------------------------------------------------------------------
# One step: fresh thread, viewers spread over the servers, warm-up, posts at `rate`
# ---------------------------------------------------------------------------------------------


def run_step(
    stack: ScaledStack, poster: Spread, pool: ThreadPoolExecutor, team: int, rate: float,
    attempt: int, args: argparse.Namespace,
) -> Step:  # fmt: skip
    n = len(stack.apis)
    label = f"{n} server{'s' if n > 1 else ''} @{rate:g}/s"
    result = StepResult(
        layer=f"{n}x", db=stack.db_label, viewers=args.viewers, rate_target=rate
    )  # fmt: skip
    step = Step(rate=rate, attempt=attempt, result=result)
    ctx = mp.get_context("spawn")
    workers: list[tuple[Any, Any]] = []
    try:
        name = f"scale-{n}-{rate:g}-{attempt}".replace(".", "_")  # a channel name takes no "."
        thread_id = stack.apis[0].create_thread(team, name)
        split = [args.viewers // args.client_procs] * args.client_procs
        for i in range(args.viewers % args.client_procs):
            split[i] += 1
        target = viewer_target(args, result.notes)
        for j, count in enumerate(split):
            url = stack.apis[j % n].feed_url(thread_id, "since=0&")
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=target,
                args=(child_end, url, count, args.connect_concurrency, args.drain),
                daemon=True,
            )
            proc.start()
            workers.append((proc, parent_end))
        for _proc, pipe in workers:
            if not pipe.poll(120):
                raise RuntimeError("viewers did not connect within 120 s")
            kind, *payload = pipe.recv()
            if kind == "result":
                raise RuntimeError(f"viewer process failed: {payload[0]}")
            result.connected += payload[0]
            if payload[1]:
                result.notes.append(f"connect errors: {payload[1]}")

        expected: list[int] = []
        warm = post_schedule(poster, pool, thread_id, args.warmup, min(rate, 20.0), "w")
        expected += [seq for seq, *_ in warm if seq is not None]
        time.sleep(0.5)

        watched: dict[str, list[int] | str] = {
            "server": stack.pids, "poster": [os.getpid()], "redis": "redis-server",
            "db": "postgres", **{f"server{i}": [pid] for i, pid in enumerate(stack.pids)},
        }  # fmt: skip
        cpu = CpuWatch(watched)
        step.busy_before = wait_for_quiet(args.quiet_wait)
        if step.busy_before > 15:
            result.notes.append(f"machine {step.busy_before:.0f}% busy before the step")
        for _, pipe in workers:
            pipe.send(("start",))
        cpu.begin()
        count = max(2, round(rate * args.step_seconds))
        posts = post_schedule(poster, pool, thread_id, count, rate, "m")
        expected += [seq for seq, *_ in posts if seq is not None]
        for _, pipe in workers:
            pipe.send(("done", expected))
        outcomes = []
        for _proc, pipe in workers:
            if not pipe.poll(args.drain + 60):
                raise RuntimeError("viewer process did not report")
            _kind, payload = pipe.recv()
            if "fatal" in payload:
                raise RuntimeError(f"viewer process failed: {payload['fatal']}")
            outcomes.append(payload)
        cpu.end()
        fill(result, args, posts, expected, outcomes, cpu)
        step.per_server_cpu = [cpu.percent(f"server{i}") for i in range(n)]
    except Exception as exc:
        stack.note_error(label, exc, result.notes)
    finally:
        for proc, _ in workers:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    r = result
    log(
        f"{label}: {fmt(r.deliveries_per_s, '{:.0f}')} deliveries/s, p50/p99 "
        f"{pair(percentile(r.lat, 50), percentile(r.lat, 99))} ms, lost {r.lost}, "
        f"sent {fmt(r.rate_achieved, '{:.1f}')}/s, server CPU {fmt(r.server_cpu, '{:.0f}')}% "
        f"→ {'pass' if step.passed else 'FAIL'}"
    )
    return step


# ---------------------------------------------------------------------------------------------
# One server count: start the stack, climb the ladder, bisect the knee
# ---------------------------------------------------------------------------------------------


class Search:
    """The rates one curve is measured at: up the ladder until a step fails, then `refine`
    bisections between the last rate that passed and the lowest that failed."""

    def __init__(self, rates: list[float], refine: int) -> None:
        self.rates, self.left = rates, refine
        self.i, self.lo = 0, 0.0
        self.hi: float | None = None  # the lowest failing rate, once there is one

    def next_rate(self) -> float | None:
        if self.hi is None:
            return self.rates[self.i] if self.i < len(self.rates) else None
        mid = round((self.lo + self.hi) / 2, 1)
        return mid if self.left > 0 and self.lo < mid < self.hi else None

    def record(self, rate: float, passed: bool) -> None:
        if self.hi is not None:
            self.left -= 1
        elif passed:
            self.i += 1
        if passed:
            self.lo = rate
        else:
            self.hi = rate


def run_curves(servers: list[int], args: argparse.Namespace) -> list[Curve]:
    """Every server count's stack up at once (idle servers cost next to nothing), and their
    steps taken in turn, so that what others run on this shared machine meanwhile falls on
    every curve alike rather than on one: the ratio is what this benchmark is for."""
    curves = [Curve(servers=n) for n in servers]
    stacks: list[ScaledStack] = []
    pool = ThreadPoolExecutor(max_workers=args.post_concurrency, thread_name_prefix="post")
    try:
        live = []
        for curve in curves:
            n = curve.servers
            stack = ScaledStack(
                f"scale-{n}", args, db_prefix="ozweb_scale_", redis_db=args.redis_db,
                servers=n, settings={"OZWEB_THROTTLE_USER": "100000000/minute"},
            )  # fmt: skip
            stacks.append(stack)
            curve.db = stack.db_label
            try:
                log(f"{n} servers: preparing {stack.db_label} in {stack.tmp}")
                stack.start()
                log(f"{n} servers: pids {stack.pids} on ports {stack.ports}")
                team = stack.apis[0].team_id()
            except Exception as exc:
                stack.note_error(f"{n} servers", exc, curve.notes)
                continue
            live.append((curve, stack, Spread(stack.apis), team, Search(args.rates, args.refine)))
        while live:
            for entry in list(live):
                curve, stack, poster, team, search = entry
                rate = search.next_rate()
                if rate is None:
                    live.remove(entry)
                    continue
                passed = False
                for k in range(1 + args.retries):
                    step = run_step(stack, poster, pool, team, rate, k + 1, args)
                    curve.steps.append(step)
                    if step.passed:
                        passed = True
                        break
                search.record(rate, passed)
                curve.reached = search.hi is not None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for curve, stack in zip(curves, stacks, strict=False):
            failed = any(n.startswith("ERROR") for n in curve.notes)
            stack.close(post_mortem=curve.notes if failed else None)
    return curves


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def curve_lines(c: Curve) -> list[str]:
    rows: list[tuple[str, list[str]]] = [
        ("posts/s", ["sent/s", "deliv/s", "p50 / p99 ms", "lost", "server CPU %",
                     "per process %", "µs/deliv", "redis / db %", "viewers / poster %",
                     "machine %", "not ours (irq) %", "step"]),
    ]  # fmt: skip
    for s in sorted(c.steps, key=lambda s: (s.rate, s.attempt)):
        r = s.result
        rows.append(
            (
                f"{s.rate:g}" + (f" (try {s.attempt})" if s.attempt > 1 else ""),
                [
                    fmt(r.rate_achieved),
                    fmt(r.deliveries_per_s, "{:.0f}"),
                    pair(percentile(r.lat, 50), percentile(r.lat, 99)),
                    str(r.lost),
                    fmt(r.server_cpu, "{:.0f}"),
                    " + ".join(fmt(x, "{:.0f}") for x in s.per_server_cpu) or "-",
                    fmt(us_per_delivery(r), "{:.0f}"),
                    pair(r.redis_cpu, r.db_cpu, "{:.0f}"),
                    pair(r.client_cpu, r.poster_cpu, "{:.0f}"),
                    fmt(r.machine_cpu, "{:.0f}"),
                    f"{fmt(r.others_cpu, '{:.0f}')} ({fmt(r.irq_cpu, '{:.0f}')})",
                    ("pass" if s.passed else "FAIL") + (" *" if r.others_cpu > NOISY else ""),
                ],
            )
        )
    best = c.saturation
    head = f"{c.servers} server process{'es' if c.servers > 1 else ''} ({c.db})"
    if best is None:
        tail = "saturation: no step passed"
    else:
        tail = (
            f"saturation: {fmt(c.throughput, '{:.0f}')} deliveries/s at {best.rate:g} posts/s"
            + ("" if c.reached else " (every step passed: a lower bound)")
        )
    lines = [head, *table(rows), tail]
    for s in c.steps:
        bad = [n for n in s.result.notes if not n.startswith("busiest")]
        if not s.passed or bad:
            lines += [f"  @{s.rate:g}/s try {s.attempt}: {note}" for note in s.result.notes]
    lines += [f"  {note}" for note in c.notes]
    return lines


def ratio(curves: list[Curve]) -> float:
    one = next((c for c in curves if c.servers == 1), None)
    two = next((c for c in curves if c.servers == 2), None)
    if one is None or two is None or one.throughput != one.throughput:
        return float("nan")
    return two.throughput / one.throughput


def verdict(curves: list[Curve]) -> str:
    x = ratio(curves)
    one = next((c for c in curves if c.servers == 1), None)
    if x != x or one is None or not one.reached:
        return "-"  # no knee for one server: nothing to divide by
    return "PASS" if x >= TARGET_RATIO and all(c.passed for c in curves) else "FAIL"


def report(curves: list[Curve], args: argparse.Namespace) -> str:
    lines = [
        f"scale-out bench: {args.viewers} viewers on one thread (split evenly over the servers, "
        f"{args.client_procs} viewer processes), {args.step_seconds:g} s per step "
        f"(+{args.warmup} warm-up posts), posts round-robin over the servers — {machine_line()}",
        f"a step passes with p99 post→delivered < {TARGET_P99_MS:g} ms, 0 lost/dup/out of order, "
        f"posts sent at ≥ {MIN_RATE_SHARE:.0%} of the rate",
    ]
    for c in curves:
        lines += ["", *curve_lines(c)]
    x = ratio(curves)
    lines += [
        "",
        f"saturation throughput, 2 servers ÷ 1: {fmt(x, '{:.2f}×')} "
        f"(target ≥ {TARGET_RATIO:g}×): {verdict(curves)}",
    ]
    if any(s.result.others_cpu > NOISY for c in curves for s in c.steps):
        lines.append(f"  * others used more than {NOISY:g}% of a core during the step")
    if any(not c.reached for c in curves):
        lines.append("  (a curve never failed a step: raise --rates for its knee)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--servers", default="1,2", help="server process counts, in order")
    parser.add_argument(
        "--rates", default="5,10,20,40,60,80,100,120,160,200,250,300",
        help="posts/s of the steps, rising",
    )  # fmt: skip
    parser.add_argument("--step-seconds", type=float, default=4.0, help="posting time per step")
    parser.add_argument("--refine", type=int, default=2, help="bisection steps after the knee")
    parser.add_argument("--retries", type=int, default=1, help="re-runs of a failing step")
    parser.add_argument("--warmup", type=int, default=10, help="posts before each step")
    parser.add_argument("--client-procs", type=int, default=2, help="viewer processes")
    viewer_option(parser)
    # Enough that the poster's own pool is not what stops the rate near the knee: with 16,
    # posts waiting ~100 ms each capped it at ~160/s, before p99 passed 250 ms.
    parser.add_argument("--post-concurrency", type=int, default=48, help="HTTP connections")
    parser.add_argument("--connect-concurrency", type=int, default=25)
    parser.add_argument("--drain", type=float, default=10.0, help="s to wait for stragglers")
    parser.add_argument("--redis-db", type=int, default=11)
    stack_options(parser, quiet_wait=5, runs=False)
    args = parser.parse_args(argv)
    try:
        servers = [int(x) for x in args.servers.split(",") if x.strip()]
        args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    except ValueError:
        parser.error("--servers and --rates take comma-separated numbers")
    if not servers or not all(1 <= s <= 8 for s in servers):
        parser.error("--servers: 1 to 8 processes each")
    if not args.rates or args.rates != sorted(args.rates) or args.rates[0] <= 0:
        parser.error("--rates: positive and rising")
    if not (1 <= args.viewers <= 5000 and 0 < args.step_seconds <= 120 and args.rates[-1] <= 2000):
        parser.error("viewers 1–5000, step seconds 0–120, rates up to 2000")
    args.client_procs = max(args.client_procs, max(servers))
    args.client_procs = min(args.client_procs, args.viewers)

    def passed(curves: list[Curve]) -> bool:
        ok = ("PASS", "-" if set(servers) != {1, 2} else "")
        return all(c.passed for c in curves) and verdict(curves) in ok

    # One item, all the curves (measured interleaved); run_each cleans up on Ctrl-C/SIGTERM.
    return run_each(
        ["all"],
        lambda _item, args: run_curves(servers, args),
        lambda results, args: report(results[0], args),
        args,
        passed=passed,
    )


if __name__ == "__main__":
    sys.exit(main())
