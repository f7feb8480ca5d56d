"""Each user's inbox: who gets what, the API, the page and sidebar badge, the live count."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from apps.core.registry import publish_event
from apps.notifications import inbox
from apps.notifications.models import Notification, NotificationKind
from apps.runs.creation import NewRun, run_create
from apps.runs.transitions import run_request_cancel
from apps.teams.services import membership_remove
from apps.threads.services import NewMessage, message_post, messages_append
from tests.conftest import api_client_for, assert_closed_with, web_client_for, websocket
from tests.factories import token_for


def kinds_of(user) -> list[tuple[str, str]]:
    return [(n.kind, n.title) for n in Notification.objects.filter(user=user).order_by("id")]


@pytest.mark.django_db
def test_a_mention_fills_the_members_inbox_and_the_api_lists_and_reads_it(
    owner, member, agent, thread, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = message_post(
            actor=owner, thread=thread, body=f"@{member.user.username} and @coder: look"
        )

    assert kinds_of(owner.user) == []  # the author is not told of their own message
    [(kind, title)] = kinds_of(member.user)
    assert kind == NotificationKind.MENTION
    assert title.startswith(f"{owner.user.username} mentioned you in #general:")
    api = api_client_for(member.user)
    [item] = api.get("/api/v1/notifications/?unread=true").json()["results"]
    assert item["url"] == f"/threads/{thread.pk}/#msg-{message.pk}"
    assert item["team"] == thread.team_id and item["read"] is False
    assert item["data"]["message"] == message.pk

    response = api.post(f"/api/v1/notifications/{item['id']}/read/")
    assert response.status_code == 200 and response.json()["read"] is True
    assert api.get("/api/v1/notifications/?unread=true").json()["count"] == 0
    assert api.get("/api/v1/notifications/?unread=false").json()["count"] == 1


@pytest.mark.django_db
def test_an_agent_mentioning_a_member_notifies_them(
    member, agent, thread, django_capture_on_commit_callbacks
):
    body = f"@{member.user.username} I need a decision here (see `@decorator`, @nobody)."
    with django_capture_on_commit_callbacks(execute=True):
        messages_append(thread=thread, items=[NewMessage(body=body, author_agent=agent)])

    [(kind, title)] = kinds_of(member.user)
    assert kind == NotificationKind.MENTION and title.startswith("@coder mentioned you")


@pytest.mark.django_db
def test_the_end_of_a_run_a_member_started_reaches_their_inbox(
    member, agent, thread, manual_run_dispatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = run_create(NewRun(agent=agent, prompt="go", thread=thread, created_by=member.user))
        run_request_cancel(actor=member, run=run)

    [notification] = Notification.objects.filter(user=member.user)
    assert notification.kind == NotificationKind.RUN_FINISHED
    assert notification.title == f"@coder's run {run.pk} cancelled"
    assert notification.url == f"/runs/{run.pk}/"


@pytest.mark.django_db
def test_approvals_and_changes_waiting_reach_members_and_above(
    owner, admin, member, viewer, thread, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish_event(
            "approval.requested",
            team_id=thread.team_id,
            data={"id": 7, "agent": 4, "agent_handle": "coder", "tool": "Bash",
                  "thread": thread.pk, "message": 12},
        )  # fmt: skip
        publish_event(
            "change.opened",
            team_id=thread.team_id,
            data={"change_id": 3, "title": "Fix the parser", "url": "https://evil.example/"},
        )

    for who in (owner, admin, member):
        assert kinds_of(who.user) == [
            (NotificationKind.APPROVAL, "@coder is waiting for approval to use Bash"),
            (NotificationKind.CHANGE_REVIEW, "Waiting for review: Fix the parser"),
        ]
    assert kinds_of(viewer.user) == []
    approval, change = Notification.objects.filter(user=member.user).order_by("id")
    assert approval.url == f"/threads/{thread.pk}/#msg-12"
    assert change.url == "/changes/3/"  # the review page; a url given in the data is not used


@pytest.mark.django_db
def test_another_users_notification_is_a_404(owner, member, team, other_team):
    [mine] = inbox.notifications_create(
        team_id=team.pk, user_ids=[member.user.pk], kind=NotificationKind.MENTION,
        title="for the member", url="", data={},
    )  # fmt: skip
    for someone_else in (owner.user, other_team["owner"].user):
        api = api_client_for(someone_else)
        assert api.post(f"/api/v1/notifications/{mine.pk}/read/").status_code == 404
        assert api.get("/api/v1/notifications/").json()["count"] == 0
        assert (
            web_client_for(someone_else).post(f"/notifications/{mine.pk}/open/").status_code == 404
        )
    mine.refresh_from_db()
    assert mine.read_at is None

    # A member who leaves no longer sees that team's notifications.
    membership_remove(actor=owner, membership=member)
    assert api_client_for(member.user).get("/api/v1/notifications/").json()["count"] == 0


@pytest.mark.django_db
def test_read_all_and_the_inbox_page_with_its_sidebar_badge(member, team, thread):
    for n in range(3):
        inbox.notifications_create(
            team_id=team.pk, user_ids=[member.user.pk], kind=NotificationKind.MENTION,
            title=f"mention {n}", url=f"/threads/{thread.pk}/", data={},
        )  # fmt: skip
    web = web_client_for(member.user)
    page = web.get("/notifications/").content.decode()
    assert 'data-unread="3"' in page and "mention 2" in page
    assert "ozweb/notifications.js" in page

    first = Notification.objects.filter(user=member.user).order_by("id").first()
    response = web.post(f"/notifications/{first.pk}/open/")
    assert response.status_code == 302 and response["Location"] == f"/threads/{thread.pk}/"
    assert 'data-unread="2"' in web.get(f"/threads/{thread.pk}/").content.decode()

    api = api_client_for(member.user)
    assert api.post("/api/v1/notifications/read-all/").json() == {"marked": 2}
    assert api.get("/api/v1/notifications/?unread=true").json()["count"] == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
async def test_the_unread_count_is_pushed_over_the_websocket(owner, member, thread):
    communicator = websocket(
        "/ws/notifications/", token=await database_sync_to_async(token_for)(member.user)
    )
    connected, _ = await communicator.connect()
    assert connected
    assert json.loads(await communicator.receive_from(timeout=2)) == {
        "type": "notifications.unread",
        "unread": 0,
    }

    message = await database_sync_to_async(message_post)(
        actor=owner, thread=thread, body=f"@{member.user.username} ping"
    )
    pushed = json.loads(await communicator.receive_from(timeout=5))
    assert pushed["type"] == "notifications.new" and pushed["unread"] == 1
    assert pushed["notification"]["url"] == f"/threads/{thread.pk}/#msg-{message.pk}"
    assert pushed["notification"]["kind"] == "mention"

    notification = await database_sync_to_async(Notification.objects.get)(user=member.user)
    await database_sync_to_async(inbox.notification_mark_read)(
        user=member.user, notification=notification
    )
    assert json.loads(await communicator.receive_from(timeout=2)) == {
        "type": "notifications.unread",
        "unread": 0,
    }
    # Nobody else's inbox is pushed to this socket.
    await database_sync_to_async(message_post)(
        actor=member, thread=thread, body=f"@{owner.user.username} pong"
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_notification_socket_needs_a_signed_in_user():
    await assert_closed_with(websocket("/ws/notifications/"), 4401)
