"""Two people in real headless Chromium on one thread: one posts, the other sees it live."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.e2e.servers import Daphne, create_user

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("OZWEB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (Debian package chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def people(embedded_env: dict[str, str]) -> dict[str, str]:
    tokens = {
        "alice": create_user(embedded_env, "alice", "alice-pw-123", "Browser Team"),
        "bob": create_user(embedded_env, "bob", "bob-pw-123", "Browser Team"),
    }
    return tokens


# Every Content-Security-Policy violation of a page (the event the browser fires on its
# document, and the console message it logs), kept where csp_violations() reads it. Playwright
# adds this before the page's own scripts, and the page's policy does not apply to it.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile || document.location.href}:${e.lineNumber}`);
});
"""


def watch_csp(context) -> list[str]:
    """Console messages about the policy on any page of `context` (the event covers the rest)."""
    logged: list[str] = []
    context.add_init_script(WATCH_CSP)
    context.on(
        "console",
        lambda message: (
            logged.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return logged


def csp_violations(page) -> list[str]:
    return [*page.evaluate("window.__cspViolations || []"), *page.context.csp_logged]


def log_in(browser, server: Daphne, username: str, password: str):
    context = browser.new_context()
    context.csp_logged = watch_csp(context)
    page = context.new_page()
    page.goto(f"{server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/teams/*/")
    return page


def open_general(page, server: Daphne, thread_id: int) -> None:
    page.goto(f"{server.url}/threads/{thread_id}/")
    page.wait_for_selector("#live-state.ok", timeout=10_000)


def test_a_post_appears_live_for_another_viewer_and_survives_a_server_restart(
    browser, embedded_server: Daphne, people: dict[str, str], tmp_path: Path
) -> None:
    teams = embedded_server.get_json("/api/v1/teams/", token=people["alice"])["results"]
    threads = embedded_server.get_json(
        f"/api/v1/teams/{teams[0]['id']}/threads/", token=people["alice"]
    )["results"]
    general = next(t for t in threads if t["name"] == "general")

    alice = log_in(browser, embedded_server, "alice", "alice-pw-123")
    bob = log_in(browser, embedded_server, "bob", "bob-pw-123")
    open_general(alice, embedded_server, general["id"])
    open_general(bob, embedded_server, general["id"])

    # Alice posts from the composer (htmx form); Bob's page shows it without reloading.
    alice.fill("#composer-body", "Hello **Bob**, this is live")
    started = time.monotonic()
    alice.press("#composer-body", "Enter")
    bob.wait_for_selector(
        "#feed-messages article:has-text('Hello Bob, this is live')", timeout=5000
    )
    seen_after = time.monotonic() - started
    assert (
        bob.inner_html("#feed-messages article:last-child .md").count("<strong>Bob</strong>") == 1
    )
    # The composer clears when Alice's own POST answers, which may be after Bob's socket
    # had the message: the broadcast goes on the post's commit, before the response.
    alice.wait_for_function("document.querySelector('#composer-body').value === ''", timeout=5000)
    assert seen_after < 2.0, f"took {seen_after:.2f}s"

    # A mention of a handle that does not exist is refused in the form; nothing is posted.
    alice.fill("#composer-body", "ping @nobody-here")
    alice.press("#composer-body", "Enter")
    alice.wait_for_selector("#composer-errors:has-text('@nobody-here')")
    assert bob.locator("#feed-messages article:has-text('nobody-here')").count() == 0

    # The server restarts; Bob's socket drops, reconnects, and resumes from its last seq.
    embedded_server.stop()
    bob.wait_for_selector("#live-state:not(.ok)", timeout=10_000)
    embedded_server.start(tmp_path)
    for n in range(3):
        embedded_server.post_json(
            f"/api/v1/threads/{general['id']}/messages/",
            {"body": f"missed message {n}"},
            token=people["alice"],
        )
    bob.wait_for_selector("#feed-messages article:has-text('missed message 2')", timeout=20_000)
    texts = bob.locator("#feed-messages article .md").all_inner_texts()
    assert [t for t in texts if t.startswith("missed message")] == [
        "missed message 0",
        "missed message 1",
        "missed message 2",
    ]
    seqs = [
        int(s)
        for s in bob.locator("#feed-messages article").evaluate_all(
            "els => els.map(e => e.dataset.seq)"
        )
    ]
    assert seqs == sorted(set(seqs)), "messages are in order and none is duplicated"
    # All of it (htmx, its websocket extension, app.js, the live swaps) within the policy.
    assert csp_violations(alice) == [] and csp_violations(bob) == []
    bob.screenshot(path=str(tmp_path / "bob.png"))
