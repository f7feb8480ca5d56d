"""Live-feed benchmark: post→delivered latency for N websocket viewers of one thread.

    .venv/bin/python bench/feed.py [--viewers 200] [--rate 20] [--messages 400]
                                   [--layers memory,redis] [--client-procs 1]

For each channel layer it starts the real app (a `daphne` process, as in production):

* memory: InMemoryChannelLayer, a fresh SQLite database in a temp dir;
* redis:  channels_redis on redis://127.0.0.1:6379/<--redis-db> with a unique key prefix, and a
          throwaway PostgreSQL database `ozweb_bench_<pid>` (`--redis-db-engine sqlite` to use
          SQLite instead). Both are removed at the end.

It runs `migrate` and `create_api_user`, creates a channel through the REST API, connects N
viewers to `/ws/v1/threads/{id}/?since=0&token=…` (the `websockets` library, in
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
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Target (the spec): 200 viewers at 20 posts/s, p99 < 250 ms, nothing lost.
TARGET_P99_MS = 250.0


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def log(*parts: Any) -> None:
    print("[feed]", *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (nan if empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a process (all its threads) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds summed over all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def wait_for_quiet(max_wait: float, busy_limit: float = 15.0) -> float:
    """Wait (at most max_wait s) for a 1 s window with the machine under busy_limit % busy.

    The machine is shared; a run that starts while someone else's build eats a core measures
    them, not us. Returns the busy % of the last window (reported either way).
    """
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = machine_busy_seconds()
        time.sleep(1.0)
        b1, t1 = machine_busy_seconds()
        busy = 100 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        if busy <= busy_limit or time.monotonic() >= deadline:
            return busy


def pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
    return pids


class CpuWatch:
    """CPU seconds used by some processes over a window.

    `pids` maps a label to a pid list or a process name (looked up at both ends, so database
    backends started during the window count from zero; ones that exit are missed).
    """

    def __init__(self, pids: dict[str, list[int] | str]) -> None:
        self.pids = pids
        self.start: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {}
        for name, pids in self.pids.items():
            found = pids_named(pids) if isinstance(pids, str) else pids
            sample[name] = {p: proc_cpu_seconds(p) for p in found}
        busy, total = machine_busy_seconds()
        sample["_busy"], sample["_total"] = {0: busy}, {0: total}
        return sample

    @staticmethod
    def _all() -> dict[int, tuple[str, float]]:
        out = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    name = stat[stat.index("(") + 1 : stat.rindex(")")]
                    out[int(entry.name)] = (name, proc_cpu_seconds(int(entry.name)))
        return out

    def begin(self) -> None:
        self.all_start = self._all()
        self.start = self._sample()
        self.t0 = time.monotonic()

    def end(self) -> None:
        stop = self._sample()
        self.wall = time.monotonic() - self.t0
        self.top: list[tuple[float, int, str]] = []  # (% of a core, pid, name), busiest first
        for pid, (name, used) in self._all().items():
            before = self.all_start.get(pid, (name, 0.0))[1]
            if used == used and before == before and used - before > 0.01 * self.wall:
                self.top.append((100 * (used - before) / self.wall, pid, name))
        self.top.sort(reverse=True)
        self.used = {
            name: sum(v - self.start[name].get(p, 0.0) for p, v in per.items() if v == v)
            for name, per in stop.items()
        }

    def percent(self, name: str) -> float:
        """Percent of one core (100 = one core fully busy)."""
        return 100 * self.used.get(name, float("nan")) / self.wall if self.wall else float("nan")

    def machine_percent(self) -> float:
        """Percent of the whole machine (100 = every core busy)."""
        total = self.used.get("_total", 0.0)
        return 100 * self.used["_busy"] / total if total else float("nan")


# ---------------------------------------------------------------------------------------------
# HTTP client (stdlib, keep-alive, one connection per pool thread)
# ---------------------------------------------------------------------------------------------


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            self.local.conn = conn
        return conn

    def request(
        self, method: str, path: str, body: Any = None, *, authorization: str = ""
    ) -> tuple[int, Any]:
        """(status, parsed JSON); as the API user, or with the `authorization` given."""
        headers = {
            "Authorization": authorization or f"Token {self.token}",
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._conn()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            self.local.conn = None
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# Viewers: a separate process each holding a slice of the websockets
# ---------------------------------------------------------------------------------------------


@dataclass
class ViewerLog:
    seqs: list[int] = field(default_factory=list)
    # (seq, recv_ns, body) for every frame; parsed after the run, not on the hot path.
    frames: list[tuple[int, int, str]] = field(default_factory=list)
    error: str = ""


def viewer_process(conn: Any, url: str, count: int, connect_concurrency: int, drain: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and cleanup
    try:
        result = asyncio.run(_viewers_main(conn, url, count, connect_concurrency, drain))
    except Exception as exc:  # report, never hang the parent
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
    with contextlib.suppress(Exception):
        conn.send(("result", result))


async def _viewers_main(
    conn: Any, url: str, count: int, connect_concurrency: int, drain: float
) -> dict[str, Any]:
    import websockets

    loop = asyncio.get_running_loop()
    logs = [ViewerLog() for _ in range(count)]
    sockets: list[Any] = [None] * count
    gate = asyncio.Semaphore(connect_concurrency)
    state: dict[str, Any] = {"target": None, "done": asyncio.Event()}
    complete = [asyncio.Event() for _ in range(count)]

    async def open_one(i: int) -> None:
        async with gate:
            for attempt in range(3):
                try:
                    ws = await websockets.connect(
                        url, open_timeout=30, max_queue=None, compression=None, ping_interval=None
                    )
                    # The consumer handles frames after connect(): the pong means it has joined
                    # the group and is streaming.
                    await ws.send('{"type":"ping"}')
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if reply.get("type") != "pong":
                        raise RuntimeError(f"expected pong, got {reply}")
                    sockets[i] = ws
                    logs[i].error = ""
                    return
                except Exception as exc:
                    logs[i].error = f"{type(exc).__name__}: {exc}"
                    await asyncio.sleep(0.2 * (attempt + 1))

    async def read_one(i: int) -> None:
        ws, vlog = sockets[i], logs[i]
        got: set[int] = set()
        try:
            async for raw in ws:
                now = time.time_ns()
                frame = json.loads(raw)
                if frame.get("type") != "message.created":
                    continue
                message = frame["message"]
                seq = message["seq"]
                vlog.frames.append((seq, now, message["body"]))
                got.add(seq)
                target = state["target"]
                if target is not None and target <= got:
                    complete[i].set()
                    return
        except websockets.ConnectionClosed as exc:
            vlog.error = f"closed: {exc}"
        finally:
            complete[i].set()

    # Loop lag: how late a 10 ms sleep wakes up (client saturation shows here).
    lags: list[float] = []

    async def lag_monitor() -> None:
        while not state["done"].is_set() and len(lags) < 100_000:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - t - 0.01) * 1000)

    await asyncio.gather(*(open_one(i) for i in range(count)))
    connected = sum(ws is not None for ws in sockets)
    readers = [asyncio.create_task(read_one(i)) for i in range(count) if sockets[i] is not None]
    conn.send(("ready", connected, [v.error for v in logs if v.error][:5]))

    # start → (record CPU), then done(expected seqs) → wait until every viewer has them all.
    msg = await loop.run_in_executor(None, conn.recv)
    assert msg[0] == "start", msg
    monitor = asyncio.create_task(lag_monitor())
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    msg = await loop.run_in_executor(None, conn.recv)
    assert msg[0] == "done", msg
    expected = set(msg[1])
    state["target"] = expected
    for i, vlog in enumerate(logs):  # viewers that already had everything before the target
        if sockets[i] is not None and expected <= {s for s, _, _ in vlog.frames}:
            complete[i].set()
    waits = [complete[i].wait() for i in range(count) if sockets[i] is not None]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*waits), drain)
    t1 = time.monotonic()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    state["done"].set()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, monitor, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in sockets if ws is not None), return_exceptions=True)

    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {
        "connected": connected,
        "errors": [v.error for v in logs if v.error],
        "frames": [v.frames if sockets[i] is not None else None for i, v in enumerate(logs)],
        "cpu_s": cpu,
        "wall_s": t1 - t0,
        "lag_ms": sorted(lags),
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


def source_tree(ref: str, tmp: Path) -> Path:
    """The code to run: the working tree, or a `git archive` of `ref` unpacked under `tmp`.

    Other people edit the working tree while a benchmark runs; a ref gives a consistent tree,
    and two refs can be compared on the same machine minutes apart.
    """
    if ref == "worktree":
        return ROOT
    dest = tmp / "src"
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=60)
    return dest


def server_env(tmp: Path, **settings: str) -> dict[str, str]:
    """A fresh ozweb's environment: none of the caller's ozweb settings, state under `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OZWEB_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="ozweb.settings",
        OZWEB_SECRET_KEY=secrets.token_urlsafe(40),
        OZWEB_DEBUG="0",
        OZWEB_LOG_LEVEL="WARNING",
        OZWEB_VAR_DIR=str(tmp / "var"),
        OZWEB_MEDIA_ROOT=str(tmp / "media"),
        REDIS_URL="",  # explicit: settings read a .env without overwriting
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def run_each(
    items: list[str], run_one: Any, report: Any, args: Any, passed: Any = lambda r: r.passed
) -> int:
    """Measure each item (Ctrl-C and SIGTERM clean up), print the report, exit 0 on PASS."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    results = []
    try:
        for item in items:
            results.append(run_one(item, args))
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        return 130
    print(report(results, args))
    return 0 if all(passed(r) for r in results) else 1


class Stack:
    """Everything started for one layer; `close()` undoes it all and is idempotent."""

    def __init__(self, layer: str, args: argparse.Namespace) -> None:
        self.layer, self.args = layer, args
        self.tmp = Path(tempfile.mkdtemp(prefix=f"ozweb-bench-{layer}-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pg_db: str | None = None
        self.redis_prefix: str | None = None
        self.redis_url: str | None = None
        self.port = free_port()
        self.src = source_tree(self.args.source, self.tmp)
        self.env = self._env()

    def _env(self) -> dict[str, str]:
        env = server_env(self.tmp)
        use_pg = self.layer == "redis" and self.args.redis_db_engine == "postgres"
        if use_pg:
            self.pg_db = f"ozweb_bench_{os.getpid()}"
            env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{self.pg_db}"
        else:
            env["DATABASE_URL"] = f"sqlite:///{self.tmp / 'db.sqlite3'}"
        if self.layer == "redis":
            self.redis_prefix = f"ozbench{os.getpid()}"
            self.redis_url = f"redis://127.0.0.1:6379/{self.args.redis_db}"
            env["REDIS_URL"] = self.redis_url
            env["OZWEB_CHANNEL_PREFIX"] = self.redis_prefix
        return env

    @property
    def db_label(self) -> str:
        return f"PostgreSQL {self.pg_db}" if self.pg_db else "SQLite (temp)"

    def manage(self, *argv: str) -> str:
        out = subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *argv],
            cwd=self.src, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def prepare(self) -> str:
        if self.pg_db:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as pg:
                pg.execute(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')
                pg.execute(f'CREATE DATABASE "{self.pg_db}"')
        self.manage("migrate", "--noinput", "-v", "0")
        return self.manage("create_api_user", "bench", "--team", "bench").strip().splitlines()[-1]

    def start_daphne(self) -> subprocess.Popen[bytes]:
        logf = open(self.tmp / "daphne.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [str(VENV_BIN / "daphne"), "-b", HOST, "-p", str(self.port), "-v", "1",
             "--access-log", str(self.tmp / "access.log"), "ozweb.asgi:application"],
            cwd=self.src, env=self.env, stdout=logf, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )  # fmt: skip
        logf.close()
        self.procs.append(proc)
        self.daphne = proc
        return proc

    def wait_ready(self, api: Api, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daphne.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.daphne_log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = api.request("GET", "/api/v1/teams/")
                if status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"daphne not ready after {timeout}s:\n{self.daphne_log()}")

    def start_profiler(self, seconds: float) -> subprocess.Popen[bytes] | None:
        """py-spy (--profile PATH) sampling daphne for the measured window, as raw stacks."""
        if not self.args.profile:
            return None
        out = self.tmp / "daphne-profile.txt"
        proc = subprocess.Popen(
            [self.args.profile, "record", "--pid", str(self.daphne.pid), "--format", "raw",
             "--duration", str(max(1, int(seconds))), "--rate", "200", "--nonblocking", "--gil",
             "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def daphne_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.tmp / "daphne.log").read_text(errors="replace")[-3000:]
        return ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs = []
        if self.pg_db:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(PG_DSN, autocommit=True) as pg:
                    pg.execute(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')
            self.pg_db = None
        if self.redis_prefix and self.redis_url:
            with contextlib.suppress(Exception):
                import redis

                client = redis.Redis.from_url(self.redis_url)
                keys = list(client.scan_iter(match=f"{self.redis_prefix}*", count=1000))[:100_000]
                for i in range(0, len(keys), 1000):
                    client.delete(*keys[i : i + 1000])
                client.close()
            self.redis_prefix = None
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def run_layer(layer: str, args: argparse.Namespace) -> Result:
    stack = Stack(layer, args)
    result = Result(layer=layer, db=stack.db_label, viewers=args.viewers, rate_target=args.rate)
    workers: list[tuple[mp.process.BaseProcess, Any]] = []
    try:
        log(f"{layer}: preparing {stack.db_label} in {stack.tmp}")
        token = stack.prepare()
        stack.start_daphne()
        api = Api(stack.port, token)
        stack.wait_ready(api)
        log(f"{layer}: daphne pid {stack.daphne.pid} on :{stack.port}")
        status, teams = api.request("GET", "/api/v1/teams/")
        team_id = (teams["results"] if isinstance(teams, dict) else teams)[0]["id"]
        status, thread = api.request(
            "POST", f"/api/v1/teams/{team_id}/threads/", {"name": f"bench-{layer}"}
        )
        if status != 201:
            raise RuntimeError(f"creating the thread: {status} {thread}")
        thread_id = thread["id"]
        url = f"ws://{HOST}:{stack.port}/ws/v1/threads/{thread_id}/?since=0&token={token}"

        # Viewers, split over --client-procs processes.
        ctx = mp.get_context("spawn")
        split = [args.viewers // args.client_procs] * args.client_procs
        for i in range(args.viewers % args.client_procs):
            split[i] += 1
        for n in split:
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=viewer_process,
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
        warm = _post_schedule(api, pool, thread_id, args.warmup, args.rate, "w")
        expected += [seq for seq, *_ in warm if seq is not None]
        time.sleep(1.0)

        watched: dict[str, list[int] | str] = {
            "server": [stack.daphne.pid], "poster": [os.getpid()]
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
        profiler = stack.start_profiler(args.messages / args.rate)
        posts = _post_schedule(api, pool, thread_id, args.messages, args.rate, "m")
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
            result.notes.append(f"py-spy profile of daphne: {stack.tmp / 'daphne-profile.txt'}")

        _fill(result, args, posts, expected, outcomes, cpu)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        result.notes.append(f"ERROR: {exc}")
        log(f"{layer}: ERROR {exc}")
    finally:
        for proc, _ in workers:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        if result.lost or result.dup or result.ooo or any("ERROR" in n for n in result.notes):
            args_keep, stack.args.keep = stack.args.keep, True
            result.notes.append(f"kept {stack.tmp} (daphne.log) for the post-mortem")
            stack.close()
            stack.args.keep = args_keep
        else:
            stack.close()
    return result


def _post_schedule(
    api: Api, pool: ThreadPoolExecutor, thread_id: int, count: int, rate: float, tag: str
) -> list[tuple[int | None, int, float, float]]:
    """Post `count` messages on an open-loop schedule; (seq, sent_ns, http_ms, late_ms) each."""
    path = f"/api/v1/threads/{thread_id}/messages/"

    def post(i: int, due: float) -> tuple[int | None, int, float, float]:
        late = (time.monotonic() - due) * 1000
        sent_ns = time.time_ns()
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

    start = time.monotonic() + 0.05
    futures = []
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        futures.append(pool.submit(post, i, due))
    return [f.result(timeout=120) for f in futures]


def _fill(
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
    result.notes.append(
        "busiest processes (% of a core): "
        + ", ".join(f"{name}[{pid}] {pct:.0f}" for pct, pid, name in cpu.top[:8])
    )
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


def report(results: list[Result], args: argparse.Namespace) -> str:
    def f(x: float, fmt: str = "{:.1f}") -> str:
        return "-" if x != x else fmt.format(x)  # nan → "-"

    def two(a: float, b: float, fmt: str = "{:.1f}") -> str:
        return f"{f(a, fmt)} / {f(b, fmt)}"

    rows: list[tuple[str, list[str]]] = [
        ("channel layer", [r.layer for r in results]),
        ("database", [r.db for r in results]),
        ("viewers connected", [f"{r.connected}/{r.viewers}" for r in results]),
        (
            "posts/s target / achieved",
            [two(r.rate_target, r.rate_achieved, "{:g}") for r in results],
        ),
        ("messages posted ok / errors", [f"{r.posted_ok} / {r.post_errors}" for r in results]),
        ("deliveries expected", [str(r.expected) for r in results]),
        ("deliveries received", [str(r.received) for r in results]),
        ("deliveries/s", [f(r.deliveries_per_s, "{:.0f}") for r in results]),
        ("latency p50 ms", [f(percentile(r.lat, 50)) for r in results]),
        ("latency p95 ms", [f(percentile(r.lat, 95)) for r in results]),
        ("latency p99 ms", [f(percentile(r.lat, 99)) for r in results]),
        ("latency max ms", [f(r.lat[-1] if r.lat else float("nan")) for r in results]),
        ("lost", [str(r.lost) for r in results]),
        ("duplicated", [str(r.dup) for r in results]),
        ("out of order", [str(r.ooo) for r in results]),
        (
            "POST p50 / p99 ms",
            [two(percentile(r.post_ms, 50), percentile(r.post_ms, 99)) for r in results],
        ),
        ("post send late p99 ms", [f(percentile(r.send_late_ms, 99)) for r in results]),
        ("CPU daphne % of a core", [f(r.server_cpu, "{:.0f}") for r in results]),
        (
            "daphne CPU µs/delivery (+posts)",
            [
                f(1e6 * r.server_cpu_s / r.received if r.received else float("nan"), "{:.0f}")
                for r in results
            ],
        ),
        ("CPU redis / db % of a core", [two(r.redis_cpu, r.db_cpu, "{:.0f}") for r in results]),
        ("CPU viewers / poster %", [two(r.client_cpu, r.poster_cpu, "{:.0f}") for r in results]),
        ("CPU machine % (all cores)", [f(r.machine_cpu, "{:.0f}") for r in results]),
        ("CPU not ours % of a core", [f(r.others_cpu, "{:.0f}") for r in results]),
        (
            "client loop lag p99 / max ms",
            [two(r.client_lag_p99, r.client_lag_max) for r in results],
        ),
        (
            f"target p99<{TARGET_P99_MS:g}ms, 0 lost",
            ["PASS" if r.passed else "FAIL" for r in results],
        ),
    ]
    width = max(len(name) for name, _ in rows)
    cols = [max(len(row[1][i]) for row in rows) for i in range(len(results))]
    lines = [
        f"feed bench: {args.viewers} viewers, {args.rate:g} posts/s, {args.messages} messages "
        f"(+{args.warmup} warm-up), {os.cpu_count()} CPUs, viewer procs {args.client_procs}"
    ]
    sep = "-" * (width + sum(c + 3 for c in cols))
    lines.append(sep)
    for name, values in rows:
        lines.append(
            name.ljust(width)
            + "".join(" | " + v.rjust(c) for v, c in zip(values, cols, strict=True))
        )
    lines.append(sep)
    for r in results:
        lines += [f"{r.layer}: {note}" for note in r.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="posts per second")
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument(
        "--layers", default="memory,redis", help="memory (the embedded layer), redis"
    )
    parser.add_argument("--warmup", type=int, default=10, help="posts before the measured run")
    parser.add_argument("--client-procs", type=int, default=1, help="processes for the viewers")
    parser.add_argument("--post-concurrency", type=int, default=8, help="HTTP connections")
    parser.add_argument("--connect-concurrency", type=int, default=25)
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for stragglers")
    parser.add_argument("--redis-db", type=int, default=0)
    parser.add_argument("--redis-db-engine", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument(
        "--quiet-wait", type=float, default=60, help="max s to wait for an idle machine"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (daphne logs)")
    parser.add_argument(
        "--source", default="worktree", help="'worktree' (default) or a git ref to run instead"
    )
    parser.add_argument(
        "--profile", metavar="PY_SPY", help="path to py-spy: sample daphne (implies --keep)"
    )
    args = parser.parse_args(argv)
    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    if not layers or set(layers) - {"memory", "redis"}:
        parser.error("--layers takes memory, redis")
    if not (1 <= args.viewers <= 5000 and 0 < args.rate <= 1000 and 1 <= args.messages <= 100_000):
        parser.error("viewers 1–5000, rate 0–1000, messages 1–100000")
    args.client_procs = max(1, min(args.client_procs, args.viewers))
    if args.profile:
        args.keep = True

    return run_each(layers, run_layer, report, args)


if __name__ == "__main__":
    sys.exit(main())
