"""Two people in headless Chromium on a thread where Claude Code (the real CLI, against the
scripted model server) asks before a command: the card appears live for both, one approves,
the other sees the answer live, and the command runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_live_feed import (  # noqa: F401 -- browser is a fixture
    browser,
    csp_violations,
    log_in,
    open_general,
)
from tests.e2e.servers import Daphne, manage
from tests.harnesses.conftest import CLI_BIN_DIR
from tests.support.model_server import ModelServer, Reply

pytestmark = [pytest.mark.browser, pytest.mark.harness_cli, pytest.mark.timeout(180)]


@pytest.fixture
def model_server():
    with ModelServer() as server:
        yield server


@pytest.fixture
def server(embedded_env: dict[str, str], tmp_path: Path):
    if not (CLI_BIN_DIR / "claude").exists():
        pytest.skip(f"claude is not installed in {CLI_BIN_DIR}")
    port_server = Daphne(embedded_env)
    # Runs in this server's own pool, as local processes: the real CLI from var/harness-clis.
    embedded_env.update(
        OZWEB_SANDBOX="local",
        OZWEB_AGENT_API_URL=port_server.url,
        PATH=f"{CLI_BIN_DIR}:{embedded_env.get('PATH', '/usr/bin:/bin')}",
    )
    port_server.start(tmp_path)
    yield port_server
    port_server.stop()


# Alice (the team's owner, who makes the agent) and Bob (a member who answers), in one
# manage.py process: each start of Django costs seconds on a busy machine.
PEOPLE = """
import io
from django.contrib.auth import get_user_model
from django.core.management import call_command
out = io.StringIO()
call_command("create_api_user", "alice", "--team", "Browser Team", stdout=out)
call_command("create_api_user", "bob", "--team", "Browser Team", "--role", "member")
for name in ("alice", "bob"):
    user = get_user_model().objects.get(username=name)
    user.set_password(name + "-pw-123")
    user.save()
print(out.getvalue().strip())
"""


def people(env: dict[str, str]) -> str:
    """Alice's API token."""
    return manage(env, "shell", "-c", PEOPLE).strip().splitlines()[-1]


def test_an_approval_appears_live_and_approve_lets_the_command_run(
    browser,  # noqa: F811 -- the fixture
    server: Daphne,
    embedded_env: dict[str, str],
    model_server: ModelServer,
) -> None:
    alice_token = people(embedded_env)
    [team] = server.get_json("/api/v1/teams/", token=alice_token)["results"]
    threads = server.get_json(f"/api/v1/teams/{team['id']}/threads/", token=alice_token)
    general = next(t for t in threads["results"] if t["name"] == "general")
    server.post_json(
        f"/api/v1/teams/{team['id']}/agents/",
        {
            "handle": "claude",
            "harness": "claude",
            "model": "claude-fake",
            "environment": {
                "ANTHROPIC_BASE_URL": model_server.url,
                "CLAUDE_CODE_MAX_RETRIES": "1",
            },
            "secrets": {"ANTHROPIC_API_KEY": "sk-ant-fake-key"},
            "approval_policy": "ask",
        },
        alice_token,
    )
    model_server.queue(Reply.shell("touch made.txt && echo ran-$((6*7))"))

    alice = log_in(browser, server, "alice", "alice-pw-123")
    bob = log_in(browser, server, "bob", "bob-pw-123")
    open_general(alice, server, general["id"])
    open_general(bob, server, general["id"])
    server.post_json(
        f"/api/v1/threads/{general['id']}/messages/", {"body": "@claude make the file"}, alice_token
    )

    # The card arrives live on both pages, with the command and the buttons.
    pending = ".approval-card[data-status=pending]"
    for page in (alice, bob):
        page.wait_for_selector(pending, timeout=60_000)
        assert "touch made.txt" in page.inner_text(pending)
    bob.click(f"{pending} button:has-text('Approve')")

    # Bob's own page shows his answer; Alice's is updated live; the command then runs.
    for page in (bob, alice):
        page.wait_for_selector(".approval-card[data-status=approved]", timeout=15_000)
        assert "Approved by bob" in page.inner_text(".approval-card")
    alice.wait_for_selector(".msg.kind-tool_result:has-text('ran-42')", timeout=60_000)
    approvals = server.get_json("/api/v1/approvals/", token=alice_token)["results"]
    assert [(a["status"], a["tool"]) for a in approvals] == [("approved", "Bash")]
    assert csp_violations(alice) == [] and csp_violations(bob) == []
