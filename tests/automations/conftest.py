from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from apps.agents.models import Harness
from tests.factories import AgentFactory

# A model-free agent for the command harness: it answers its prompt and ends its turn.
ECHO_AGENT = """
import json, sys
first = json.loads(sys.stdin.readline())
print(json.dumps({"type": "result", "text": "echo: " + first["text"]}), flush=True)
"""


@pytest.fixture(autouse=True)
def automation_settings(settings, tmp_path: Path) -> None:
    # Runs are queued by the normal delivery path; a test executes them itself (execute_run).
    settings.OZWEB_RUN_DISPATCH = "manual"
    settings.OZWEB_SANDBOX = "local"
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")


@pytest.fixture
def echo_agent(team, tmp_path: Path):
    path = tmp_path / "echo_agent.py"
    path.write_text(textwrap.dedent(ECHO_AGENT))
    return AgentFactory(
        team=team,
        handle="bot",
        harness=Harness.COMMAND,
        command=f"{sys.executable} -u {path}",
    )
