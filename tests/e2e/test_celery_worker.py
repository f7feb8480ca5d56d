"""Scaled mode with a real Celery worker (Redis broker) running runs in Docker containers.

A worker that dies mid-run loses nothing: another worker's reconciler takes the container
over and replays the output nobody stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, require_service
from tests.e2e.servers import ROOT, Daphne, base_env, create_user, manage

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.docker, pytest.mark.timeout(300)]

TICKER = (
    "python3 -u -c 'import time\n"
    "for i in range(20):\n"
    '    print("tick %d" % i, flush=True); time.sleep(0.25)\''
)


@pytest.fixture
def stack_env(tmp_path: Path, harness_image: str) -> Iterator[dict[str, str]]:
    require_service(POSTGRES_URL, "PostgreSQL")
    require_service(REDIS_URL, "Redis")
    name = f"ozweb_celery_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    suffix = uuid.uuid4().hex[:8]
    env = base_env(
        DATABASE_URL=POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}",
        REDIS_URL=REDIS_URL,
        OZWEB_CHANNEL_PREFIX=f"ozweb-celery-{suffix}",
        OZWEB_CELERY_QUEUE=f"ozweb-test-{suffix}",
        OZWEB_SANDBOX="docker",
        OZWEB_RUN_STALE_SECONDS="3",
        OZWEB_RECONCILE_SECONDS="1",
        OZWEB_HARNESS_IMAGE=harness_image,
        OZWEB_VAR_DIR=str(tmp_path / "var"),
    )
    manage(env, "migrate", "--noinput", "-v0")
    yield env
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Worker:
    def __init__(self, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.log_path = log_dir / f"celery-{name}.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "ozweb",
                "worker",
                "-B",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--loglevel",
                "INFO",
                "-n",
                f"{name}@%h",
                "--schedule",
                str(log_dir / f"beat-{name}"),
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while "ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"celery worker did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_run(server: Daphne, token: str, run_id: int, statuses: set[str], timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.get_json(f"/api/v1/runs/{run_id}/", token=token)
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} stayed {run['status']}")


def messages(server: Daphne, token: str, thread_id: int) -> list[dict]:
    page = server.get_json(f"/api/v1/threads/{thread_id}/messages/?limit=200", token=token)
    return page["results"]


def test_a_celery_worker_runs_a_run_and_a_killed_worker_loses_nothing(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    token = create_user(stack_env, "operator", "operator-pw-1", "Celery")
    web = Daphne(stack_env).start(tmp_path)
    first = Worker(stack_env, tmp_path, "first")
    second = None
    try:
        team = web.get_json("/api/v1/teams/", token=token)["results"][0]
        agent = web.post_json(
            f"/api/v1/teams/{team['id']}/agents/",
            {"handle": "ticker", "harness": "command", "command": TICKER},
            token,
        )
        health = web.get_json("/healthz")
        assert health["worker"]["ok"] and health["worker"]["workers"], health

        # End to end: the API queues, the worker runs it in a container, the feed fills.
        quick = web.post_json("/api/v1/runs/", {"agent": agent["id"], "prompt": "tick"}, token)
        done = wait_run(web, token, quick["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", {
            k: done[k] for k in ("error", "stderr_tail", "exit_code")
        }
        assert done["sandbox"] == "docker"
        ticks = [m["body"] for m in messages(web, token, done["thread"]) if m["run"] == done["id"]]
        assert [t for t in ticks if t.startswith("tick")] == [f"tick {i}" for i in range(20)]

        # Mid-run, the worker dies (SIGKILL: no cleanup). Another takes the container over.
        run = web.post_json("/api/v1/runs/", {"agent": agent["id"], "prompt": "tick"}, token)
        wait_run(web, token, run["id"], {"running"})
        time.sleep(1.5)
        first.kill()
        second = Worker(stack_env, tmp_path, "second")
        finished = wait_run(web, token, run["id"], {"succeeded", "failed", "cancelled"})
        assert finished["status"] == "succeeded", (finished, second.log()[-3000:])
        bodies = [m["body"] for m in messages(web, token, run["thread"]) if m["run"] == run["id"]]
        assert [b for b in bodies if b.startswith("tick")] == [f"tick {i}" for i in range(20)]
        events = web.get_json(f"/api/v1/runs/{run['id']}/events/", token=token)
        assert any("re-attached" in str(e["data"]) for e in events)
    finally:
        first.kill()
        if second is not None:
            second.stop()
        web.stop()
