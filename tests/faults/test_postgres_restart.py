"""PostgreSQL restarted while runs stream output (a private cluster: tests.faults.services).

The server keeps a pool of connections that all break when PostgreSQL goes away. A run that
prints through an outage longer than the pool's wait goes on: its output waits in the ingest
writer, which tries again, and is stored once the database is back, every event once, in
order (RunEvent seqs 1…n, no gap, no repeat); the executor's looks and heartbeats skip a beat.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.servers import Daphne, base_env
from tests.faults.conftest import fault_database, migrated
from tests.faults.services import PostgresCluster

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

LINES = 40
TICKER = (
    "python3 -u -c 'import time\n"
    f"for i in range({LINES}):\n"
    '    print("tick %d" % i, flush=True); time.sleep(0.1)\''
)


def get(server: Daphne, path: str, token: str) -> Any:
    """GET through a database outage: a request that fails is asked again."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return server.get_json(path, token=token)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_run(server: Daphne, token: str, run_id: int, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = get(server, f"/api/v1/runs/{run_id}/", token)
        if run["status"] in statuses:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} stayed {run['status']}")


def test_runs_go_on_through_a_postgres_restart_and_lose_no_event(
    private_postgres: PostgresCluster, tmp_path: Path
) -> None:
    database = next(fault_database(private_postgres.url()))
    env = base_env(
        DATABASE_URL=database,
        OZWEB_RUN_DISPATCH="inprocess",
        OZWEB_SANDBOX="local",
        # Shorter than the outage: the executor and the writer meet the errors, not only waits.
        OZWEB_DB_POOL_TIMEOUT="0.5",
        OZWEB_VAR_DIR=str(tmp_path / "var"),
    )
    token = migrated(database, tmp_path / "var")
    server = Daphne(env).start(tmp_path)
    try:
        team = server.get_json("/api/v1/teams/", token=token)["results"][0]
        agent = server.post_json(
            f"/api/v1/teams/{team['id']}/agents/",
            {"handle": "ticker", "harness": "command", "command": TICKER},
            token,
        )
        runs = [server.post_json("/api/v1/runs/", {"agent": agent["id"], "prompt": "tick"}, token)]
        wait_run(server, token, runs[0]["id"], {"running"})
        time.sleep(1.0)  # some output is stored before the outage
        private_postgres.stop(mode="fast")  # every pooled connection breaks
        time.sleep(2.0)  # the run prints on while nothing can be stored
        private_postgres.start()

        finished = wait_run(server, token, runs[0]["id"], {"succeeded", "failed", "cancelled"})
        assert finished["status"] == "succeeded", (finished, server.log())
        assert server.log_path is not None  # the writer did meet the outage:
        assert "run output waits" in server.log_path.read_text(errors="replace")
        # A run started after the restart works on the same (renewed) pool.
        again = server.post_json("/api/v1/runs/", {"agent": agent["id"], "prompt": "tick"}, token)
        assert wait_run(server, token, again["id"], {"succeeded", "failed"})["status"] == (
            "succeeded"
        )

        with psycopg.connect(database) as conn:
            for run_id in (finished["id"], again["id"]):
                seqs = [
                    row[0]
                    for row in conn.execute(
                        "SELECT seq FROM runs_runevent WHERE run_id = %s ORDER BY seq", [run_id]
                    )
                ]
                assert seqs == list(range(1, len(seqs) + 1)), seqs
                ticks = [
                    row[0]
                    for row in conn.execute(
                        "SELECT body FROM threads_message WHERE run_id = %s AND body LIKE 'tick %%'"
                        " ORDER BY seq",
                        [run_id],
                    )
                ]
                assert ticks == [f"tick {i}" for i in range(LINES)], (run_id, ticks)
    finally:
        server.stop()
