"""The sidebar's unread count in a real browser: live over the websocket (notifications.js), and
a browser notification while the tab is in the background."""

from __future__ import annotations

import pytest

from tests.browser.test_live_feed import browser, csp_violations, log_in, people  # noqa: F401
from tests.e2e.servers import Daphne

pytestmark = pytest.mark.browser

# The tab is "in the background" (document.hidden), and each Notification the page makes is
# recorded before the browser's own is made.
BACKGROUND_TAB = """
Object.defineProperty(document, "hidden", { get: () => true });
window.__shown = [];
const RealNotification = window.Notification;
window.Notification = function (title, options) {
  window.__shown.push(title);
  return new RealNotification(title, options);
};
window.Notification.requestPermission = RealNotification.requestPermission.bind(RealNotification);
Object.defineProperty(window.Notification, "permission", {
  get: () => RealNotification.permission,
});
"""


def test_a_mention_shows_in_the_sidebar_live_and_as_a_browser_notification(
    browser,  # noqa: F811
    embedded_server: Daphne,
    people: dict[str, str],  # noqa: F811
) -> None:
    teams = embedded_server.get_json("/api/v1/teams/", token=people["alice"])["results"]
    threads = embedded_server.get_json(
        f"/api/v1/teams/{teams[0]['id']}/threads/", token=people["alice"]
    )["results"]
    general = next(t for t in threads if t["name"] == "general")
    bob = log_in(browser, embedded_server, "bob", "bob-pw-123")
    bob.context.grant_permissions(["notifications"], origin=embedded_server.url)
    bob.context.add_init_script(BACKGROUND_TAB)
    bob.goto(f"{embedded_server.url}/teams/{teams[0]['id']}/")
    assert bob.is_hidden("#inbox-unread")  # nothing unread yet

    embedded_server.post_json(
        f"/api/v1/threads/{general['id']}/messages/",
        {"body": "@bob could you review this?"},
        token=people["alice"],
    )

    bob.wait_for_selector("#inbox-unread:has-text('1')", timeout=10_000)
    assert bob.evaluate("window.__shown") == [
        "alice mentioned you in #general: @bob could you review this?"
    ]
    assert bob.title().startswith("(1) ")
    bob.goto(f"{embedded_server.url}/notifications/")
    bob.click("#inbox button.link")  # open it: marked read, on to the message
    bob.wait_for_url(f"{embedded_server.url}/threads/{general['id']}/*")
    assert bob.is_hidden("#inbox-unread")
    assert csp_violations(bob) == []
