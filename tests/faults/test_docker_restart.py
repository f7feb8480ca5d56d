"""The Docker engine restarted under live runs (a second dockerd of our own:
tests.faults.services.DockerEngine; the machine's engine is never touched).

An engine that stops takes its containers with it (no live-restore), so a run cannot go on:
it fails, visibly, with the reason on the run and the output it printed before kept. The
next run starts on the restarted engine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import Daphne, base_env
from tests.faults.conftest import FaultDatabase
from tests.faults.services import DockerEngine
from tests.faults.test_postgres_restart import wait_run

pytestmark = [pytest.mark.docker, pytest.mark.postgres, pytest.mark.timeout(300)]

TICKER = (
    "python3 -u -c 'import time\n"
    "for i in range(300):\n"
    '    print("tick %d" % i, flush=True); time.sleep(0.1)\''
)
QUICK = "echo quick-done"


def test_a_docker_restart_fails_live_runs_visibly_and_the_next_run_starts(
    shared_postgres_database: FaultDatabase, private_docker_engine: DockerEngine, tmp_path: Path
) -> None:
    env = base_env(
        DATABASE_URL=shared_postgres_database.url,
        DOCKER_HOST=private_docker_engine.host,
        OZWEB_RUN_DISPATCH="inprocess",
        OZWEB_SANDBOX="docker",
        # The private engine's small image has no oz-relay (the isolated default's way to
        # ozweb), and this test's command agents reach nothing.
        OZWEB_SANDBOX_NETWORK="host",
        # The executor itself must say what happened; the reconciler would only after this.
        OZWEB_RUN_STALE_SECONDS="600",
        OZWEB_VAR_DIR=str(tmp_path / "var"),
    )
    token = shared_postgres_database.token
    server = Daphne(env).start(tmp_path)
    try:
        team = server.get_json("/api/v1/teams/", token=token)["results"][0]

        def agent(handle: str, command: str) -> dict[str, Any]:
            return server.post_json(
                f"/api/v1/teams/{team['id']}/agents/",
                {
                    "handle": handle,
                    "harness": "command",
                    "command": command,
                    "image": private_docker_engine.image,
                },
                token,
            )

        ticker, quick = agent("ticker", TICKER), agent("quick", QUICK)
        run = server.post_json("/api/v1/runs/", {"agent": ticker["id"], "prompt": "go"}, token)
        running = wait_run(server, token, run["id"], {"running"})
        assert running["sandbox"] == "docker"
        time.sleep(1.0)  # it has printed some ticks

        private_docker_engine.stop()  # a restart: it stops its containers, then comes back
        private_docker_engine.start()
        failed = wait_run(server, token, run["id"], {"succeeded", "failed", "cancelled"})

        assert failed["status"] == "failed", failed
        assert "the Docker engine stopped answering" in failed["error"] or failed["exit_code"] in (
            137,
            143,
        ), failed  # the engine was down when the run ended, or already up and said how
        page = server.get_json(f"/api/v1/threads/{failed['thread']}/messages/", token=token)
        ticks = [m["body"] for m in page["results"] if m["body"].startswith("tick ")]
        assert ticks and ticks == [f"tick {i}" for i in range(len(ticks))]

        after = server.post_json("/api/v1/runs/", {"agent": quick["id"], "prompt": "go"}, token)
        done = wait_run(server, token, after["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done
    finally:
        server.stop()
