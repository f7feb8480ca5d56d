"""The collaboration demo, offline, in Docker sandboxes: `manage.py run_scenario` on a fresh
embedded install (it starts the server itself)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.servers import ROOT, free_port, manage

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def test_the_lead_delegates_waits_for_both_workers_and_writes_a_summary(
    embedded_env: dict[str, str], harness_image: str
) -> None:
    port = free_port()
    env = dict(
        embedded_env,
        OZWEB_SANDBOX="docker",
        OZWEB_SANDBOX_NETWORK="host",
        OZWEB_HARNESS_IMAGE=harness_image,
        OZWEB_AGENT_API_URL=f"http://127.0.0.1:{port}",
    )
    manage(env, "seed_demo")

    result = subprocess.run(
        [sys.executable, "manage.py", "run_scenario", "--timeout", "180"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Done. Artifacts: summary.md, worker-a-inventory.md, worker-b-review.md" in output
    lines = [line for line in result.stdout.splitlines() if line.startswith("  [")]
    text = "\n".join(lines)
    assert "Delegated to @worker-a" in text and "Delegated to @worker-b" in text
    assert "Result of run" in text and "from @worker-a (succeeded)" in text
    assert "from @worker-b (succeeded)" in text
    assert text.index("from @worker-b (succeeded)") < text.index("summary.md")
