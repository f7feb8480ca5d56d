"""The review page in real headless Chromium: Alice comments on a line of a change, Bob sees
the comment live, Alice requests changes, and the review message appears in the thread that
Bob has open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.test_live_feed import browser, csp_violations, log_in  # noqa: F401
from tests.e2e.servers import Daphne, base_env, manage

pytestmark = pytest.mark.browser

# The change's agent: takes the review as its next turn and says what it got.
ECHO_AGENT = """
import json, sys
for line in sys.stdin:
    text = json.loads(line)["text"]
    print(json.dumps({"type": "text", "text": "on it: " + str("use +" in text)}), flush=True)
    print(json.dumps({"type": "result", "text": "done"}), flush=True)
    break
"""

BUILD_CHANGE = """
import json, sys
from pathlib import Path
from django.contrib.auth import get_user_model
from apps.agents.models import Agent, Harness
from apps.teams.models import Membership, Role
from apps.teams.services import team_create
from apps.threads.models import Thread
from tests.reviews.changes import CALC, open_change
User = get_user_model()
alice = User.objects.create_user("alice", password="alice-pw-123")
bob = User.objects.create_user("bob", password="bob-pw-123")
team = team_create(name="Review Team", owner=alice)
Membership.objects.create(team=team, user=bob, role=Role.MEMBER)
agent = Agent.objects.create(team=team, handle="coder", display_name="Coder",
    harness=Harness.COMMAND, command=sys.executable + " -u " + {program!r})
thread = Thread.objects.get(team=team, name="general")
fixed = CALC.replace("def f2(a, b):\\n    return a + b", "def f2(a, b):\\n    return a - b")
change, _ = open_change(team=team, agent=agent, tmp_path=Path({work!r}), thread=thread,
    base_files={{"calc.py": CALC}}, files={{"calc.py": fixed}})
print(json.dumps({{"change": change.pk, "thread": thread.pk}}))
"""


@pytest.fixture
def server(tmp_path: Path):
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        OZWEB_VAR_DIR=str(tmp_path / "var"),
        OZWEB_SANDBOX="local",
        # No lexing in the page: its files come plain and the page's script colours them.
        OZWEB_REVIEW_HIGHLIGHT_MS="0",
    )
    manage(env, "migrate", "--noinput", "-v0")
    program = tmp_path / "echo_agent.py"
    program.write_text(ECHO_AGENT)
    code = BUILD_CHANGE.format(program=str(program), work=str(tmp_path / "work"))
    ids = json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])
    daphne = Daphne(env).start(tmp_path)
    daphne.ids = ids  # type: ignore[attr-defined]
    yield daphne
    daphne.stop()


def test_comment_on_a_line_request_changes_and_the_review_appears_in_the_thread(
    browser,  # noqa: F811
    server: Daphne,
) -> None:
    change, thread = server.ids["change"], server.ids["thread"]  # type: ignore[attr-defined]
    alice = log_in(browser, server, "alice", "alice-pw-123")
    bob = log_in(browser, server, "bob", "bob-pw-123")
    alice.goto(f"{server.url}/changes/{change}/")
    bob.goto(f"{server.url}/changes/{change}/")
    for page in (alice, bob):
        page.wait_for_selector("#live-state.ok", timeout=10_000)
    # Shown plain, then coloured by the page's script as the file comes into view.
    alice.wait_for_selector("table.diff td.c span.k:has-text('return')", timeout=5000)
    assert alice.locator("table.diff[data-hl]").count() == 0

    # Alice clicks line 6's number (new side), writes, and posts with the comment box.
    alice.locator("table.diff[data-path='calc.py'] td.n", has_text="6").first.click()
    alice.fill(".rc-form textarea[name=body]", "It must add: use + here")
    alice.click(".rc-form button[type=submit]")
    alice.wait_for_selector(".rc-thread:has-text('use + here')", timeout=5000)
    # Bob sees it under the same line without reloading.
    bob.wait_for_selector(".rc-thread:has-text('use + here')", timeout=5000)
    placed = bob.evaluate(
        """() => {
          const row = document.querySelector('.rc-thread').closest('tr').previousElementSibling;
          return row.querySelector('td.n').textContent;
        }"""
    )
    assert placed == "6"

    # A range: click line 5, shift-click line 7.
    alice.locator("table.diff td.n", has_text="5").first.click()
    alice.locator("table.diff td.n", has_text="7").first.click(modifiers=["Shift"])
    assert "Line 5–7" in alice.inner_text(".rc-form .rc-where")
    alice.click(".rc-form .rc-cancel")

    # Bob watches the thread; Alice requests changes.
    bob.goto(f"{server.url}/threads/{thread}/")
    bob.wait_for_selector("#live-state.ok", timeout=10_000)
    alice.fill("#review-form textarea[name=body]", "One fix, please")
    alice.click("#review-request-changes")
    alice.wait_for_selector(".flash-success:has-text('sent to @coder')", timeout=5000)
    review = bob.wait_for_selector("article.kind-review:has-text('use + here')", timeout=5000)
    text = review.inner_text()
    assert "calc.py" in text and "line 6" in text and "return a - b" in text
    assert "One fix, please" in text
    # The comment is now sent, on the page Alice is back on.
    assert "sent" in alice.inner_text(".rc-thread .rc-state")
    assert csp_violations(alice) == [] and csp_violations(bob) == []
