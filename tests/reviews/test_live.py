"""The review page's websocket: a comment reaches every viewer of the change live; another
team's socket is closed as not found."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from apps.repos.reviews import CommentInput, change_comment_create
from tests.conftest import assert_closed_with, session_cookie_for, websocket

pytestmark = [pytest.mark.django_db(transaction=True)]


async def test_a_comment_reaches_every_viewer_of_the_page_live(change, owner, member):
    cookie = await database_sync_to_async(session_cookie_for)(member.user)
    viewer = websocket(f"/ws/changes/{change.pk}/", cookie=cookie)
    connected, _ = await viewer.connect()
    assert connected

    await database_sync_to_async(change_comment_create)(
        actor=owner, change=change, path="calc.py", comment=CommentInput(line=6, body="live one")
    )
    frame = await viewer.receive_from(timeout=5)

    assert frame.startswith('<div id="rc-incoming" hx-swap-oob="beforeend">')
    assert 'data-path="calc.py" data-side="new" data-line="6"' in frame and "live one" in frame
    # The page's pending count follows, for everyone viewing.
    assert '<p class="muted small" id="pending-count" hx-swap-oob="true">1 pending comment' in frame
    await viewer.disconnect()


async def test_another_teams_socket_is_closed_as_not_found(change, other_team):
    cookie = await database_sync_to_async(session_cookie_for)(other_team["owner"].user)
    await assert_closed_with(websocket(f"/ws/changes/{change.pk}/", cookie=cookie), 4404)
