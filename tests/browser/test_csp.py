"""Every screen works under the Content-Security-Policy in real Chromium: no violation is
reported (by the `securitypolicyviolation` event or the console) on any of them."""

from __future__ import annotations

import pytest

from tests.browser.test_live_feed import browser, csp_violations, log_in  # noqa: F401
from tests.e2e.servers import Daphne, create_user

pytestmark = pytest.mark.browser

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_no_page_reports_a_csp_violation(browser, embedded_server: Daphne, embedded_env):  # noqa: F811
    token = create_user(embedded_env, "carol", "carol-pw-123", "CSP Team")
    [team] = embedded_server.get_json("/api/v1/teams/", token=token)["results"]
    threads = embedded_server.get_json(f"/api/v1/teams/{team['id']}/threads/", token=token)
    general = next(t for t in threads["results"] if t["name"] == "general")
    embedded_server.post_json(
        f"/api/v1/threads/{general['id']}/messages/", {"body": "**hello** `code`"}, token=token
    )
    embedded_server.post_json(
        f"/api/v1/teams/{team['id']}/artifacts/",
        {"name": "plan.md", "content": "# Plan", "kind": "plan", "thread": general["id"]},
        token=token,
    )
    page = log_in(browser, embedded_server, "carol", "carol-pw-123")
    base = embedded_server.url
    seen: list[str] = []

    def settled() -> None:
        page.wait_for_load_state("networkidle")
        seen.extend(page.evaluate("window.__cspViolations || []"))

    # The live pages: the websockets connect (same origin, connect-src 'self').
    page.goto(f"{base}/threads/{general['id']}/")
    page.wait_for_selector("#live-state.ok", timeout=10_000)
    page.type("#composer-body", "posted @")
    page.wait_for_selector("#mention-suggestions li")
    page.fill("#composer-body", "posted under the policy")
    page.press("#composer-body", "Enter")
    page.wait_for_selector("#feed-messages article:has-text('posted under the policy')")
    settled()
    page.goto(f"{base}/teams/{team['id']}/")
    page.wait_for_selector(f"#thread-row-{general['id']}", timeout=10_000)
    settled()

    # The artifact list's thread filter submits itself (app.js, not an inline handler).
    page.goto(f"{base}/teams/{team['id']}/artifacts/")
    page.select_option("select[data-autosubmit]", str(general["id"]))
    page.wait_for_url(f"**/artifacts/?thread={general['id']}")
    page.click("text=plan.md")
    settled()

    for path in [
        f"/teams/{team['id']}/agents/",
        f"/teams/{team['id']}/memory/",
        f"/teams/{team['id']}/members/",
        "/teams/new/",
        "/admin/login/",
    ]:
        page.goto(base + path)
        settled()
    page.goto(f"{base}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)  # its script ran
    settled()
    assert seen == []
    assert page.context.csp_logged == []

    # Redoc renders the schema under its own page's policy; the one thing refused there is its
    # footer's logo from Redocly's CDN: a third party, refused on purpose.
    page.goto(f"{base}/api/v1/redoc/")
    page.wait_for_selector("redoc h1", timeout=15_000)
    settled()
    assert [v.split(" at ")[0] for v in seen] == [f"img-src blocked {REDOCLY_LOGO}"]
