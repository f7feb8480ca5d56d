"""Many idle viewers: server memory per websocket, and a post's latency to all of them.

    .venv/bin/python -m bench.idle [--viewers 5000] [--posts 10] [--rate 1]

Starts the real app (`bench.stack.Stack`: daphne, embedded mode, a fresh SQLite database) with
the per-user and per-address websocket caps raised, reads daphne's RSS (/proc VmRSS) once it
has served one socket and one post, opens `--viewers` sockets to `/ws/v1/threads/{id}/` (the
`websockets` library, `--connect-concurrency` at a time, each streaming once its ping is
answered), lets them sit idle for `--settle` seconds and reads the RSS again: memory per
connection is the difference over the count. Then it posts `--posts` messages at `--rate` a
second through the REST API; each body carries its send time and every viewer checks that it
gets each one once, in order. Targets (issue 12): at most 50 KB per connection, and a post
reaches all viewers with p99 under 1 s. Raises this process's open-file limit (daphne inherits
it). Everything listens on 127.0.0.1; daphne and the temp dir are removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import (
    Stack,
    feed_messages,
    fmt,
    log,
    machine_line,
    open_feed,
    percentile,
    run_each,
    stack_options,
    table,
    wait_for_quiet,
)

TARGET_KB_PER_CONN = 50.0
TARGET_P99_MS = 1000.0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, needed)) if hard != resource.RLIM_INFINITY else max(soft, needed)
    if want != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


@dataclass
class Result:
    viewers: int = 0
    connected: int = 0
    rss_before_kb: int = 0
    rss_open_kb: int = 0
    posts: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    busy: float = float("nan")  # the machine's busy % just before measuring
    notes: list[str] = field(default_factory=list)

    @property
    def kb_per_conn(self) -> float:
        if not self.connected:
            return float("nan")
        return (self.rss_open_kb - self.rss_before_kb) / self.connected

    def p(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q) if self.latencies_ms else float("nan")

    @property
    def passed(self) -> bool:
        return (
            self.connected == self.viewers
            and self.kb_per_conn <= TARGET_KB_PER_CONN
            and self.p(99) < TARGET_P99_MS
            and not (self.lost or self.duplicated or self.out_of_order)
            and len(self.latencies_ms) == self.viewers * self.posts
        )


class Viewer:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seqs: list[int] = []
        self.latencies_ms: list[float] = []

    async def read(self) -> None:
        with contextlib.suppress(Exception):
            async for now, message in feed_messages(self.ws):
                self.seqs.append(message["seq"])
                sent = int(message["body"].rsplit(" ", 1)[1])
                self.latencies_ms.append((now - sent) / 1e6)


async def measure(stack: Stack, api: Any, args: argparse.Namespace, result: Result) -> None:
    team = api.team_id()
    thread = api.create_thread(team, "idle")
    url = api.feed_url(thread)
    warm = await open_feed(url)  # one socket and one post before the first reading
    await asyncio.to_thread(
        api.call, "POST", f"/api/v1/threads/{thread}/messages/", {"body": "warm 0"}, 201
    )
    await asyncio.wait_for(warm.recv(), 30)
    await warm.close()
    await asyncio.sleep(1)
    result.rss_before_kb = rss_kb(stack.pid)

    viewers: list[Viewer] = []
    gate = asyncio.Semaphore(args.connect_concurrency)

    async def connect() -> None:
        async with gate:
            try:
                viewers.append(Viewer(await open_feed(url)))
            except Exception as exc:  # counted: connected < viewers fails the run
                if len(result.notes) < 3:
                    result.notes.append(f"connect: {exc!r}")

    started = time.monotonic()
    await asyncio.gather(*(connect() for _ in range(args.viewers)))
    result.connected = len(viewers)
    log(f"{result.connected} sockets open in {time.monotonic() - started:.1f} s")
    readers = [asyncio.create_task(v.read()) for v in viewers]
    await asyncio.sleep(args.settle)
    result.rss_open_kb = rss_kb(stack.pid)

    posted: list[int] = []
    posts_start = time.monotonic()
    for i in range(args.posts):
        await asyncio.sleep(max(0.0, posts_start + i / args.rate - time.monotonic()))
        body = f"idle {i} {time.time_ns()}"
        created = await asyncio.to_thread(
            api.call, "POST", f"/api/v1/threads/{thread}/messages/", {"body": body}, 201
        )
        posted.append(created["seq"])
    result.posts = len(posted)
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline and any(len(v.seqs) < len(posted) for v in viewers):
        await asyncio.sleep(0.2)
    for v in viewers:
        result.latencies_ms.extend(v.latencies_ms)
        got = set(v.seqs)
        result.lost += sum(1 for s in posted if s not in got)
        result.duplicated += len(v.seqs) - len(got)
        result.out_of_order += sum(1 for a, b in zip(v.seqs, v.seqs[1:], strict=False) if b <= a)
    for task in readers:
        task.cancel()
    await asyncio.gather(*(v.ws.close() for v in viewers), return_exceptions=True)
    await asyncio.gather(*readers, return_exceptions=True)


def run_one(_: str, args: argparse.Namespace) -> Result:
    limit = raise_fd_limit(args.viewers + 1000)
    if limit < args.viewers + 100:
        log(f"open-file limit {limit} is below {args.viewers} sockets; expect refused connects")
    result = Result(viewers=args.viewers)
    stack = Stack("idle", args)
    stack.env.update(
        OZWEB_WS_MAX_PER_USER=str(args.viewers + 100),
        OZWEB_WS_MAX_PER_ADDRESS=str(args.viewers + 100),
    )
    try:
        api = stack.start()
        result.busy = wait_for_quiet(args.quiet_wait)
        asyncio.run(measure(stack, api, args, result))
    except Exception as exc:
        stack.note_error("idle", exc, result.notes)
    finally:
        stack.close(post_mortem=None if result.passed else result.notes)
    return result


def report(results: list[Result], args: argparse.Namespace) -> str:
    [r] = results
    rows = [
        ("sockets open / asked", [f"{r.connected} / {r.viewers}"]),
        (
            "daphne RSS before / open MB",
            [f"{r.rss_before_kb / 1024:.0f} / {r.rss_open_kb / 1024:.0f}"],
        ),
        ("server memory KB/conn", [fmt(r.kb_per_conn)]),
        ("target KB/conn", [f"≤{TARGET_KB_PER_CONN:g}"]),
        ("posts × viewers delivered", [f"{len(r.latencies_ms)} of {r.posts * r.viewers}"]),
        ("lost / dup / out of order", [f"{r.lost} / {r.duplicated} / {r.out_of_order}"]),
        ("latency p50 / p99 ms", [f"{fmt(r.p(50))} / {fmt(r.p(99))}"]),
        ("target p99 ms", [f"<{TARGET_P99_MS:g}"]),
        ("verdict", ["PASS" if r.passed else "FAIL"]),
    ]
    lines = [
        f"idle viewers bench: {args.viewers} idle websockets on one thread, "
        f"{args.posts} posts at {args.rate:g}/s",
        f"{machine_line()}; {fmt(r.busy, '{:.0f}')}% busy at start",
        *table(rows),
        *r.notes,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=5000)
    parser.add_argument("--posts", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1.0, help="posts per second")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before reading")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for stragglers")
    stack_options(parser, quiet_wait=0, runs=False)
    args = parser.parse_args(argv)
    if not (1 <= args.viewers <= 20_000 and 1 <= args.posts <= 1000 and 0 < args.rate <= 100):
        parser.error("viewers 1–20000, posts 1–1000, rate 0–100")
    return run_each(["embedded"], run_one, report, args)


if __name__ == "__main__":
    sys.exit(main())
