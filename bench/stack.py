"""What every benchmark shares: the stack under test, the clients that drive it, CPU figures.

* The stack: the source tree to run (`source_tree`), a fresh server environment
  (`server_env`), and `Stack`, one ozweb under `daphne` on 127.0.0.1 with its temp dir, its
  database (SQLite, or a throwaway PostgreSQL database), its channel layer (embedded or Redis)
  and, for agent runs, its sandbox. `start_daphne` and `stop` start and stop any ASGI app the
  same way, so a reference server (a bare relay, a bare ASGI app) is measured on equal terms.
  `ScaledStack` is ozweb scaled out: PostgreSQL, Redis, several daphne processes on their own
  ports and, for agent runs, a Celery worker.
* The clients: `Api` (keep-alive `http.client`, one connection per thread, JSON in and out)
  and `open_feed` (a websocket on a thread's feed, streaming once it answers a ping) with
  `feed_messages` (what arrives on it, stamped); `LoopLag` shows when a client's event loop,
  not the server, is the bottleneck.
* The figures: `percentile`, `CpuWatch` (CPU of named processes and of the machine),
  `wait_for_quiet` (the machine is shared), `machine_line`.
* Run and report: `stack_options` (the options every benchmark has), `open_loop` (calls on a
  fixed-rate schedule), `run_each` measures each item and prints the report; `table` lays out
  a figure per row and a column per item; `fmt` and `pair` print nan as "-".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HARNESS_IMAGE = "ozweb-harness:local"
FINISHED = {"succeeded", "failed", "cancelled", "timed_out"}  # a run's final statuses
T = TypeVar("T")


def log(*parts: Any) -> None:
    """To stderr, tagged with the benchmark's name (`python -m bench.feed` → `[feed]`)."""
    print(f"[{Path(sys.argv[0]).stem}]", *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The stack under test
# ---------------------------------------------------------------------------------------------


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
        # Hundreds of viewers of one user, all on 127.0.0.1, are the feed benchmark's load:
        # the websocket caps are lifted (they still count every connection).
        OZWEB_WS_MAX_PER_USER="100000",
        OZWEB_WS_MAX_PER_ADDRESS="100000",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def start_daphne(
    app: str, port: int, *, cwd: Path, env: dict[str, str], logs: Path
) -> subprocess.Popen[bytes]:
    """`daphne` serving the ASGI `app` ("module:attr") on HOST:port, logging under `logs`."""
    logf = open(logs / "daphne.log", "wb")  # noqa: SIM115 - closed with the process
    if os.environ.get("OZWEB_BENCH_SERVER") == "uvicorn":
        argv = [str(VENV_BIN / "uvicorn"), "--host", HOST, "--port", str(port), "--ws",
                "websockets", "--no-access-log", "--log-level", "warning", app]  # fmt: skip
    else:
        argv = [str(VENV_BIN / "daphne"), "-b", HOST, "-p", str(port), "-v", "1",
                "--access-log", str(logs / "access.log"), app]  # fmt: skip
    proc = subprocess.Popen(
        argv,
        cwd=cwd, env=env, stdout=logf, stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
    )  # fmt: skip
    logf.close()
    return proc


def stop(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # in-process runs hold their threads
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class Stack:
    """One ozweb under daphne, with all it needs; `close()` undoes it all and is idempotent.

    The defaults are the embedded product: a fresh SQLite database in the temp dir and the
    embedded channel layer. `postgres=True` uses a throwaway PostgreSQL database
    `ozweb_bench_<pid>` instead; `redis_db` selects channels_redis on that Redis database
    with a unique key prefix; `sandbox` ("local" or "docker") runs agents in-process with
    `args.workers` workers, their containers labelled with this stack's instance, on the
    Docker network `sandbox_network` ("host" by default; "" for the product's isolated one).
    """

    def __init__(
        self,
        name: str,
        args: argparse.Namespace,
        *,
        postgres: bool = False,
        redis_db: int | None = None,
        sandbox: str | None = None,
        sandbox_network: str = "host",
    ) -> None:
        self.args, self.sandbox = args, sandbox
        self.sandbox_network = sandbox_network
        self.tmp = Path(tempfile.mkdtemp(prefix=f"ozweb-bench-{name}-"))
        self.port = free_port()
        self.instance = f"bench-{name}-{os.getpid()}-{secrets.token_hex(3)}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.daphne: subprocess.Popen[bytes] | None = None
        self.pg_db = f"ozweb_bench_{os.getpid()}" if postgres else None
        self.redis_url = None if redis_db is None else f"redis://127.0.0.1:6379/{redis_db}"
        self.redis_prefix = None if redis_db is None else f"ozbench{os.getpid()}"
        self.src = source_tree(args.source, self.tmp)
        self.env = server_env(self.tmp, **self._settings())

    def _settings(self) -> dict[str, str]:
        settings = {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.pg_db}"
            if self.pg_db
            else f"sqlite:///{self.tmp / 'db.sqlite3'}"
        }
        if self.redis_url and self.redis_prefix:
            settings.update(REDIS_URL=self.redis_url, OZWEB_CHANNEL_PREFIX=self.redis_prefix)
        if self.sandbox:
            settings.update(
                OZWEB_RUN_DISPATCH="inprocess",
                # Embedded mode runs at most OZWEB_INPROCESS_WORKERS runs at once (default 4).
                OZWEB_INPROCESS_WORKERS=str(self.args.workers),
                OZWEB_SANDBOX=self.sandbox,
                # "" is the product's default: --network none, ozweb through the relay socket.
                OZWEB_SANDBOX_NETWORK=self.sandbox_network,
                OZWEB_AGENT_API_URL=f"http://{HOST}:{self.port}",
                OZWEB_INSTANCE=self.instance,
            )
        return settings

    @property
    def db_label(self) -> str:
        return f"PostgreSQL {self.pg_db}" if self.pg_db else "SQLite (temp)"

    @property
    def agent_python(self) -> str:
        """The interpreter for a benchmark agent's program (stdlib only)."""
        if self.sandbox == "local":
            # The host's `python3` may be a pyenv shim (a shell script, ~100 ms to start).
            return str(VENV_BIN / "python")
        return "python3"

    def manage(self, *argv: str) -> str:
        out = subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *argv],
            cwd=self.src, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def start(self, timeout: float = 60) -> Api:
        """Database, migrations, an API user, daphne; a client as that user once it answers."""
        if self.pg_db:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as pg:
                pg.execute(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')
                pg.execute(f'CREATE DATABASE "{self.pg_db}"')
        self.manage("migrate", "--noinput", "-v", "0")
        token = self.manage("create_api_user", "bench", "--team", "bench").strip().splitlines()[-1]
        self.daphne = start_daphne(
            "ozweb.asgi:application", self.port, cwd=self.src, env=self.env, logs=self.tmp
        )
        self.procs.append(self.daphne)
        api = Api(self.port, token)
        deadline = time.monotonic() + timeout
        while True:
            if self.daphne.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if api.request("GET", "/api/v1/teams/")[0] == 200:
                    return api
            if time.monotonic() >= deadline:
                raise RuntimeError(f"daphne not ready after {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        assert self.daphne is not None, "the stack is not started"
        return self.daphne.pid

    def profile(
        self, name: str, seconds: float, *, rate: int = 250, gil: bool = False
    ) -> subprocess.Popen[bytes] | None:
        """py-spy (--profile PATH) sampling daphne for `seconds`, as raw stacks."""
        if not self.args.profile or self.daphne is None:
            return None
        out = self.profile_path(name)
        log(f"py-spy profile of daphne: {out}")
        proc = subprocess.Popen(
            [self.args.profile, "record", "--pid", str(self.daphne.pid), "--format", "raw",
             "--duration", str(max(1, round(seconds))), "--rate", str(rate), "--nonblocking",
             *(["--gil"] if gil else []), "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def profile_path(self, name: str) -> Path:
        return self.tmp / f"profile-{name}.txt"

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.tmp / "daphne.log").read_text(errors="replace")[-3000:]
        return ""

    def note_error(self, label: str, exc: Exception, notes: list[str]) -> None:
        """An error ends one item's measurement, not the benchmark: noted for the report
        ("ERROR: ..."), logged with the end of daphne's log."""
        notes.append(f"ERROR: {type(exc).__name__}: {exc}")
        log(f"{label}: ERROR {exc}\n{self.log_tail()[-1500:]}")

    def close(self, *, post_mortem: list[str] | None = None) -> None:
        """Stop everything, drop the database, Redis keys and containers; remove the temp dir
        unless --keep or --profile, or `post_mortem` is given (a failed item's notes: says
        where it is)."""
        keep = self.args.keep or bool(self.args.profile)
        if post_mortem is not None and not keep:
            post_mortem.append(f"kept {self.tmp} (daphne.log) for the post-mortem")
        stop(self.procs)
        self.procs, self.daphne = [], None
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
        if self.sandbox == "docker":
            left = self._remove_containers()
            if left:
                log(f"removed {left} leftover container(s) of {self.instance}")
        if keep or post_mortem is not None:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _remove_containers(self) -> int:
        try:
            import docker

            client = docker.from_env(timeout=30)
            found = client.api.containers(
                all=True, filters={"label": f"dev.ozweb.instance={self.instance}"}
            )
            for c in found[:1000]:
                with contextlib.suppress(Exception):
                    client.api.remove_container(c["Id"], force=True)
            client.close()
            return len(found)
        except Exception as exc:
            log(f"removing containers labelled {self.instance}: {exc}")
            return 0


class ScaledStack(Stack):
    """ozweb scaled out on this machine: a throwaway PostgreSQL database `<db_prefix><pid>_<hex>`,
    channels_redis on Redis database `redis_db` (every key — channel layer, cache, Celery queue
    and worker — under one unique prefix), `servers` daphne processes each on its own port and,
    with `celery`, a Celery worker (thread pool of `args.workers`) running the agents' runs.
    `settings` are more of the servers' (and worker's) environment. `apis` holds one client per
    server, `pids` the servers' pids; `close()` undoes it all.
    """

    def __init__(
        self,
        name: str,
        args: argparse.Namespace,
        *,
        db_prefix: str,
        redis_db: int,
        servers: int = 2,
        sandbox: str | None = None,
        celery: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        super().__init__(name, args, postgres=True, redis_db=redis_db, sandbox=sandbox)
        tag = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.pg_db = f"{db_prefix}{tag}"
        self.redis_prefix = f"ozscale{tag}"
        self.celery = celery
        self.queue = f"{self.redis_prefix}.runs"
        self.ports = [self.port] + [free_port() for _ in range(servers - 1)]
        self.servers: list[subprocess.Popen[bytes]] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self.apis: list[Api] = []
        self.env = server_env(self.tmp, **self._settings(), **(settings or {}))

    def _settings(self) -> dict[str, str]:
        settings = super()._settings()
        if self.redis_prefix is not None and self.redis_prefix.startswith("ozscale"):
            # The throttles' cache and Celery share the Redis database: under our prefix too.
            settings.update(
                OZWEB_CACHE_PREFIX=self.redis_prefix, OZWEB_CELERY_QUEUE=f"{self.redis_prefix}.runs"
            )
        if self.sandbox and getattr(self, "celery", False):
            settings["OZWEB_RUN_DISPATCH"] = "celery"
        return settings

    @property
    def db_label(self) -> str:
        return f"PostgreSQL {self.pg_db}, Redis prefix {self.redis_prefix}"

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.servers]

    def server_logs(self, i: int) -> Path:
        logs = self.tmp if i == 0 else self.tmp / f"server{i}"
        logs.mkdir(exist_ok=True)
        return logs

    def start(self, timeout: float = 60) -> Api:
        """Database, migrations, an API user, the servers (and worker); server 0's client once
        every server answers."""
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')
            pg.execute(f'CREATE DATABASE "{self.pg_db}"')
        self.manage("migrate", "--noinput", "-v", "0")
        token = self.manage("create_api_user", "bench", "--team", "bench").strip().splitlines()[-1]
        for i, port in enumerate(self.ports):
            proc = start_daphne(
                "ozweb.asgi:application", port, cwd=self.src, env=self.env,
                logs=self.server_logs(i),
            )  # fmt: skip
            self.servers.append(proc)
            self.procs.append(proc)
            self.apis.append(Api(port, token))
        self.daphne = self.servers[0]
        if self.celery:
            self._start_worker(timeout)
        deadline = time.monotonic() + timeout
        for proc, api in zip(self.servers, self.apis, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"daphne on :{api.port} exited:\n{self.log_tail()}")
                with contextlib.suppress(OSError, http.client.HTTPException):
                    if api.request("GET", "/api/v1/teams/")[0] == 200:
                        break
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"daphne :{api.port} not ready in {timeout:g} s")
                time.sleep(0.2)
        return self.apis[0]

    def _start_worker(self, timeout: float) -> None:
        # As tests/e2e/test_celery_worker.py starts one, without beat (no schedules here),
        # gossip or mingle (one worker); named under our prefix so its pidbox keys are ours.
        log_path = self.tmp / "celery.log"
        with log_path.open("wb") as logf:
            self.worker = subprocess.Popen(
                [str(VENV_BIN / "python"), "-m", "celery", "-A", "ozweb", "worker",
                 "--pool", "threads", "--concurrency", str(self.args.workers),
                 "--loglevel", "INFO", "-n", f"{self.redis_prefix}@%h",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=self.src, env=self.env, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.procs.append(self.worker)
        deadline = time.monotonic() + timeout
        while "ready." not in log_path.read_text(errors="replace"):
            if self.worker.poll() is not None or time.monotonic() >= deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self) -> str:
        tails = []
        for i in range(len(self.ports)):
            with contextlib.suppress(OSError):
                text = (self.server_logs(i) / "daphne.log").read_text(errors="replace")
                tails.append(f"--- daphne :{self.ports[i]}\n{text[-1500:]}")
        with contextlib.suppress(OSError):
            text = (self.tmp / "celery.log").read_text(errors="replace")
            tails.append(f"--- celery worker\n{text[-1500:]}")
        return "\n".join(tails)

    def close(self, *, post_mortem: list[str] | None = None) -> None:
        stop(self.procs)
        self.servers, self.worker = [], None
        if self.redis_prefix and self.redis_url:
            # Kombu's exchange bindings (sets, `_kombu.binding[_permanent].<exchange>`) are
            # shared by every Celery app on the database: our members (queues under our prefix)
            # come out and an emptied set goes; so do the deadlines (a zset of exchanges) of
            # bindings no longer there.
            with contextlib.suppress(Exception):
                import redis

                client = redis.Redis.from_url(self.redis_url)
                mark = self.redis_prefix.encode()
                keys = list(client.scan_iter(match="_kombu.binding*", count=1000))[:1000]
                for key in keys:
                    if client.type(key) != b"set":
                        continue
                    mine = [m for m in client.smembers(key) if mark in m]
                    if mine:
                        client.srem(key, *mine)
                    if mark in key or (mine and not client.scard(key)):
                        client.delete(key)
                deadlines = b"_kombu.binding_deadlines"
                if client.type(deadlines) == b"zset":
                    for exchange in client.zrange(deadlines, 0, -1):
                        if mark in exchange or not client.exists(b"_kombu.binding." + exchange):
                            client.zrem(deadlines, exchange)
                # Tasks a stopped worker had not acknowledged (acks_late: an interrupted run):
                # each names our queue.
                if client.type(b"unacked") == b"hash":
                    for tag, payload in list(client.hscan_iter(b"unacked", count=1000))[:10_000]:
                        if mark in payload:
                            client.hdel(b"unacked", tag)
                            client.zrem(b"unacked_index", tag)
                client.close()
        super().close(post_mortem=post_mortem)


def harness_image_id() -> str | None:
    """The cached harness image's id, or None if it has not been built."""
    image = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", HARNESS_IMAGE],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return None if image.returncode else image.stdout.strip()


def require_harness_image(parser: argparse.ArgumentParser) -> str:
    """The harness image's id; exits with how to build it if there is none."""
    image = harness_image_id()
    if image is None:
        parser.error(f"no {HARNESS_IMAGE} image: .venv/bin/python manage.py build_harness_image")
    return image


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------


class Api:
    """HTTP client (stdlib, keep-alive, one connection per thread), as the API user."""

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

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        """The parsed JSON of a call that must answer `expect`; retried once on a keep-alive
        connection the server closed while it was idle."""
        try:
            status, data = self.request(method, path, body)
        except (OSError, http.client.HTTPException):
            status, data = self.request(method, path, body)
        if status != expect:
            raise RuntimeError(f"{method} {path}: HTTP {status} {str(data)[:300]}")
        return data

    def team_id(self) -> int:
        """The API user's (first) team."""
        teams = self.call("GET", "/api/v1/teams/")
        return (teams["results"] if isinstance(teams, dict) else teams)[0]["id"]

    def create_thread(self, team: int, name: str) -> int:
        return self.call("POST", f"/api/v1/teams/{team}/threads/", {"name": name}, 201)["id"]

    def create_command_agent(
        self, team: int, handle: str, program: str, *, python: str, run_timeout: int, **env: str
    ) -> dict[str, Any]:
        """A `command`-harness agent running `program` (Python source) passed inline through
        its environment, so the cached harness image needs nothing extra."""
        return self.call(
            "POST",
            f"/api/v1/teams/{team}/agents/",
            {
                "handle": handle,
                "harness": "command",
                "command": f'{python} -u -c "$BENCH_AGENT"',
                "environment": {"BENCH_AGENT": program, **env},
                "run_timeout_seconds": run_timeout,
            },
            201,
        )

    def feed_url(self, thread_id: int, query: str = "") -> str:
        """The websocket URL of a thread's feed, as the API user."""
        return f"ws://{HOST}:{self.port}/ws/v1/threads/{thread_id}/?{query}token={self.token}"


async def open_feed(url: str) -> Any:
    """A websocket on a thread's feed, once it is streaming (the `websockets` library)."""
    import websockets

    ws = await websockets.connect(
        url, open_timeout=30, max_queue=None, compression=None, ping_interval=None
    )
    try:
        # The consumer answers frames only after connect(): the pong means it has joined the
        # thread's group and is streaming.
        await ws.send('{"type":"ping"}')
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if reply.get("type") != "pong":
            raise RuntimeError(f"expected pong, got {reply}")
    except BaseException:
        await ws.close()
        raise
    return ws


async def feed_messages(ws: Any) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """(time.time_ns() on receipt, the message) for each new message on a feed's websocket."""
    async for raw in ws:
        now = time.time_ns()
        frame = json.loads(raw)
        if frame.get("type") == "message.created":
            yield now, frame["message"]


class LoopLag:
    """How late a 10 ms sleep wakes up on this event loop: a saturated client shows here,
    rather than as latency. `ms` holds the samples (the most recent 100,000 to 200,000)."""

    def __init__(self) -> None:
        self.ms: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            self.ms.append((time.perf_counter() - t - 0.01) * 1000)
            if len(self.ms) > 200_000:
                del self.ms[:100_000]


# ---------------------------------------------------------------------------------------------
# CPU and latency figures
# ---------------------------------------------------------------------------------------------


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


def machine_irq_seconds() -> float:
    """CPU seconds of interrupts and softirqs, summed over all cores (/proc/stat): the kernel's
    network processing on loopback lands here, charged to no process."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (values[5] + values[6]) / CLK_TCK


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


def pids_where(match: Callable[[Path], bool]) -> list[int]:
    """The processes whose /proc entry matches (ones that vanish meanwhile are skipped)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if match(entry):
                    pids.append(int(entry.name))
    return pids


def pids_named(name: str) -> list[int]:
    return pids_where(lambda entry: (entry / "comm").read_text().strip() == name)


class CpuWatch:
    """CPU seconds used by some processes over a window.

    `pids` maps a label to a pid list or a process name (looked up at both ends, so database
    backends started during the window count from zero; ones that exit are missed).
    """

    def __init__(self, pids: dict[str, list[int] | str]) -> None:
        self.pids = pids
        self.start: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}
        self.top: list[tuple[float, int, str]] = []  # (% of a core, pid, name), busiest first

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {}
        for name, pids in self.pids.items():
            found = pids_named(pids) if isinstance(pids, str) else pids
            sample[name] = {p: proc_cpu_seconds(p) for p in found}
        busy, total = machine_busy_seconds()
        sample["_busy"], sample["_total"] = {0: busy}, {0: total}
        sample["_irq"] = {0: machine_irq_seconds()}
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
        self.top = []
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

    def busiest(self, n: int = 8) -> str:
        """The busiest processes of the window, as `name[pid] %-of-a-core, ...`."""
        return ", ".join(f"{name}[{pid}] {pct:.0f}" for pct, pid, name in self.top[:n])


def machine_line() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    return f"{os.cpu_count()} CPUs ({model or platform.machine()}){mem}, {platform.platform()}"


# ---------------------------------------------------------------------------------------------
# Run and report
# ---------------------------------------------------------------------------------------------


def stack_options(parser: argparse.ArgumentParser, *, quiet_wait: float, runs: bool) -> None:
    """The options of the stack and the machine, alike in every benchmark (`runs`: agents')."""
    if runs:
        parser.add_argument("--workers", type=int, default=0,
                            help="OZWEB_INPROCESS_WORKERS (default: agents + 2)")  # fmt: skip
    parser.add_argument("--quiet-wait", type=float, default=quiet_wait,
                        help="max s to wait for an idle machine before measuring")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (daphne log)")
    parser.add_argument(
        "--profile", metavar="PY_SPY", help="path to py-spy: sample daphne (implies --keep)"
    )
    parser.add_argument(
        "--source", default="worktree", help="'worktree' (default) or a git ref to run instead"
    )


def open_loop(
    pool: ThreadPoolExecutor, count: int, rate: float, job: Callable[[int, int], T]
) -> list[T]:
    """`job(i, due_ns)` for i in range(count), each submitted to `pool` when due (`rate` a
    second, due_ns on the time.time_ns() clock), whether or not earlier ones have come back:
    a slow call does not push the next one back. Their results, in order."""
    start = time.monotonic() + 0.05
    start_ns = time.time_ns() + int(0.05e9)
    futures = []
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        futures.append(pool.submit(job, i, start_ns + int(i * 1e9 / rate)))
    return [f.result(timeout=120) for f in futures]


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


def fmt(x: float, spec: str = "{:.1f}") -> str:
    return "-" if x != x else spec.format(x)  # nan → "-"


def pair(a: float, b: float, spec: str = "{:.1f}") -> str:
    return f"{fmt(a, spec)} / {fmt(b, spec)}"


def table(rows: list[tuple[str, list[str]]]) -> list[str]:
    """A figure per row (its name, then one value per column), between two rules."""
    width = max(len(name) for name, _ in rows)
    cols = [max(len(values[i]) for _, values in rows) for i in range(len(rows[0][1]))]
    sep = "-" * (width + sum(c + 3 for c in cols))
    lines = [sep]
    for name, values in rows:
        lines.append(
            name.ljust(width)
            + "".join(" | " + v.rjust(c) for v, c in zip(values, cols, strict=True))
        )
    lines.append(sep)
    return lines
