"""The thread websockets on the real ASGI stack: backfill, live order, gap fill, auth."""

import json
import re
from unittest import mock

import pytest
from channels.db import database_sync_to_async

from apps.agents.models import AgentStatus
from apps.agents.services import agent_set_status
from apps.runs.archiving import agent_archive
from apps.threads import services
from apps.threads.selectors import thread_list
from tests.conftest import assert_closed_with, session_cookie_for, websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]


@database_sync_to_async
def post(actor, thread, body: str):
    return services.message_post(actor=actor, thread=thread, body=body)


@database_sync_to_async
def post_silently(actor, thread, body: str):
    """Post with the realtime event lost on the way, as a dropped frame would be."""
    with mock.patch("apps.core.realtime.broadcast_now"):
        return services.message_post(actor=actor, thread=thread, body=body)


@pytest.fixture
def token(owner) -> str:
    return token_for(owner.user)


@pytest.fixture
def member_token(member) -> str:
    return token_for(member.user)


async def receive_json_frames(communicator, count: int) -> list[dict]:
    return [json.loads(await communicator.receive_from(timeout=2)) for _ in range(count)]


async def test_json_stream_backfills_after_since_then_streams_live_in_order(
    owner, thread, post_messages, token
):
    await database_sync_to_async(post_messages)(thread, 5)
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since=2", token=token)
    connected, _ = await communicator.connect()
    assert connected

    backfill = await receive_json_frames(communicator, 3)
    await post(owner, thread, "live one")
    await post(owner, thread, "live two")
    live = await receive_json_frames(communicator, 2)

    assert [f["type"] for f in backfill + live] == ["message.created"] * 5
    assert [f["message"]["seq"] for f in backfill + live] == [3, 4, 5, 6, 7]
    assert [f["message"]["body"] for f in live] == ["live one", "live two"]
    assert live[0]["message"]["author"]["handle"] == owner.user.username
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()


async def test_json_stream_without_since_starts_at_the_newest(owner, thread, post_messages, token):
    await database_sync_to_async(post_messages)(thread, 3)
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/", token=token)
    await communicator.connect()

    assert await communicator.receive_nothing(timeout=0.1)
    await post(owner, thread, "fresh")
    [frame] = await receive_json_frames(communicator, 1)
    assert frame["message"]["seq"] == 4
    await communicator.disconnect()


async def test_json_stream_fills_a_dropped_frame_from_the_database(owner, thread, token):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since=0", token=token)
    await communicator.connect()

    await post_silently(owner, thread, "lost on the wire")
    await post(owner, thread, "arrives")
    frames = await receive_json_frames(communicator, 2)

    assert [(f["message"]["seq"], f["message"]["body"]) for f in frames] == [
        (1, "lost on the wire"),
        (2, "arrives"),
    ]
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()


async def test_json_stream_reports_deliveries_with_the_message(owner, thread, agent, token):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since=0", token=token)
    await communicator.connect()

    await post(owner, thread, "@coder build it")
    [frame] = await receive_json_frames(communicator, 1)

    assert [(d["handle"], d["state"]) for d in frame["message"]["deliveries"]] == [
        ("coder", "pending")
    ]
    await communicator.disconnect()


async def test_json_stream_answers_pings_with_the_last_seq(owner, thread, post_messages, token):
    await database_sync_to_async(post_messages)(thread, 2)
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since=0", token=token)
    await communicator.connect()
    await receive_json_frames(communicator, 2)

    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong", "last_seq": 2}
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.disconnect()


async def test_json_stream_refuses_a_since_that_is_not_a_number(owner, thread, token):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since=abc", token=token)
    await communicator.connect()

    assert (await communicator.receive_json_from())["type"] == "error"
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4400}
    await communicator.disconnect()


async def test_session_cookie_authenticates(owner, thread, post_messages):
    await database_sync_to_async(post_messages)(thread, 1)
    cookie = await database_sync_to_async(session_cookie_for)(owner.user)
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since=0", cookie=cookie)

    connected, _ = await communicator.connect()

    assert connected
    [frame] = await receive_json_frames(communicator, 1)
    assert frame["message"]["seq"] == 1
    await communicator.disconnect()


@pytest.mark.parametrize("path", ["/ws/v1/threads/{id}/", "/ws/threads/{id}/"])
async def test_no_credentials_close_with_4401(thread, path):
    await assert_closed_with(websocket(path.format(id=thread.pk)), 4401)


async def test_a_wrong_token_closes_with_4401(thread):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/", token="not-a-real-token")

    await assert_closed_with(communicator, 4401)


@pytest.mark.parametrize("path", ["/ws/v1/threads/{id}/", "/ws/threads/{id}/"])
async def test_another_teams_thread_closes_with_4404(owner, other_team, path, token):
    communicator = websocket(path.format(id=other_team["thread"].pk), token=token)

    await assert_closed_with(communicator, 4404)


async def test_a_thread_that_does_not_exist_closes_with_4404(owner, token):
    communicator = websocket("/ws/v1/threads/999999/", token=token)

    await assert_closed_with(communicator, 4404)


def message_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article [^>]*id="msg-(\d+)"', html)]


async def test_feed_waits_for_resume_then_sends_exactly_the_missed_messages(
    owner, member, thread, post_messages, member_token
):
    messages = await database_sync_to_async(post_messages)(thread, 6)
    communicator = websocket(f"/ws/threads/{thread.pk}/", token=member_token)
    await communicator.connect()
    assert await communicator.receive_nothing(timeout=0.1)

    await communicator.send_json_to({"type": "resume", "since": 4})
    frame = await communicator.receive_from(timeout=2)

    assert frame.startswith('<div id="feed-messages" hx-swap-oob="beforeend">')
    assert message_ids(frame) == [messages[4].pk, messages[5].pk]
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()


async def test_feed_sends_live_messages_as_fragments_and_marks_them_read(
    owner, member, thread, member_token
):
    communicator = websocket(f"/ws/threads/{thread.pk}/", token=member_token)
    await communicator.connect()
    await communicator.send_json_to({"type": "resume", "since": 0})
    assert await communicator.receive_nothing(timeout=0.1)

    message = await post(owner, thread, "**hello** there")
    frame = await communicator.receive_from(timeout=2)

    assert message_ids(frame) == [message.pk]
    assert "<strong>hello</strong>" in frame
    await communicator.disconnect()
    [row] = await database_sync_to_async(list)(thread_list(team=thread.team, user=member.user))
    assert row.unread == 0


async def test_feed_holds_live_events_until_resume_without_duplicates(owner, thread, token):
    communicator = websocket(f"/ws/threads/{thread.pk}/", token=token)
    await communicator.connect()

    first = await post(owner, thread, "before resume")
    await communicator.send_json_to({"type": "resume", "since": 0})
    backfill = await communicator.receive_from(timeout=2)
    second = await post(owner, thread, "after resume")
    live = await communicator.receive_from(timeout=2)

    assert message_ids(backfill) == [first.pk]
    assert message_ids(live) == [second.pk]
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()


async def test_feed_fills_a_dropped_frame(owner, thread, token):
    communicator = websocket(f"/ws/threads/{thread.pk}/", token=token)
    await communicator.connect()
    await communicator.send_json_to({"type": "resume", "since": 0})

    lost = await post_silently(owner, thread, "lost")
    arrived = await post(owner, thread, "arrived")
    received: list[int] = []
    while len(received) < 2:  # one frame or two, depending on when the resume landed
        frame = await communicator.receive_from(timeout=2)
        assert frame.startswith('<div id="feed-messages" hx-swap-oob="beforeend">')
        received += message_ids(frame)

    assert received == [lost.pk, arrived.pk]
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()


async def test_feed_ignores_malformed_resume_frames(owner, thread, post_messages, token):
    await database_sync_to_async(post_messages)(thread, 1)
    communicator = websocket(f"/ws/threads/{thread.pk}/", token=token)
    await communicator.connect()

    await communicator.send_to(text_data="{nope")
    await communicator.send_json_to({"type": "resume", "since": "zero"})
    await communicator.send_json_to({"type": "resume", "since": -1})

    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()


# -- `/ws/teams/{id}/`: the live dashboard ------------------------------------------------------


async def test_dashboard_pushes_agent_status_changes_as_oob_rows(team, agent, token):
    communicator = websocket(f"/ws/teams/{team.pk}/", token=token)
    connected, _ = await communicator.connect()
    assert connected

    await database_sync_to_async(agent_set_status)(agent=agent, status=AgentStatus.RUNNING)
    frame = await communicator.receive_from(timeout=2)

    assert f'id="agent-{agent.pk}"' in frame
    assert 'hx-swap-oob="true"' in frame
    assert "status-running" in frame
    await communicator.disconnect()


async def test_dashboard_removes_an_archived_agent(owner, team, agent, token):
    communicator = websocket(f"/ws/teams/{team.pk}/", token=token)
    await communicator.connect()
    agent_id = agent.pk

    await database_sync_to_async(agent_archive)(actor=owner, agent=agent)

    frame = await communicator.receive_from(timeout=2)
    assert frame == f'<div id="agent-{agent_id}" hx-swap-oob="delete"></div>'
    await communicator.disconnect()


async def test_dashboard_pushes_activity_and_unread_counts(member, team, thread, token):
    communicator = websocket(f"/ws/teams/{team.pk}/", token=token)
    await communicator.connect()

    await post(member, thread, "news from me")
    frame = await communicator.receive_from(timeout=2)

    assert 'hx-swap-oob="afterbegin:#activity"' in frame
    assert "news from me" in frame
    assert 'id="thread-list" hx-swap-oob="true"' in frame
    assert 'title="1 unread"' in frame  # the owner has not read the member's message
    await communicator.disconnect()


async def test_dashboard_without_credentials_closes_with_4401(team):
    await assert_closed_with(websocket(f"/ws/teams/{team.pk}/"), 4401)


async def test_another_teams_dashboard_closes_with_4404(other_team, token):
    await assert_closed_with(websocket(f"/ws/teams/{other_team['team'].pk}/", token=token), 4404)


async def test_feed_renders_a_delivery_change_once_for_every_viewer(owner, thread, agent, token):
    from django.db import transaction

    from apps.threads.consumers import ThreadFeedConsumer
    from apps.threads.deliveries import broadcast_delivery
    from apps.threads.models import Delivery

    message = await post(owner, thread, "look")  # no mention: no run starts meanwhile
    viewers = [websocket(f"/ws/threads/{thread.pk}/", token=token) for _ in range(3)]
    for viewer in viewers:
        await viewer.connect()
        await viewer.send_json_to({"type": "resume", "since": message.seq})
    for viewer in viewers:  # streaming (nothing missed); the post's own frame came before
        assert await viewer.receive_nothing(timeout=0.1)

    @database_sync_to_async
    def change() -> None:
        with transaction.atomic():
            broadcast_delivery(Delivery.objects.create(message=message, agent=agent))

    render = ThreadFeedConsumer.render_deliveries
    with mock.patch.object(
        ThreadFeedConsumer, "render_deliveries", autospec=True, side_effect=render
    ) as rendered:
        await change()
        frames = [await viewer.receive_from(timeout=2) for viewer in viewers]

    assert rendered.call_count == 1
    assert len(set(frames)) == 1
    assert f'id="msg-{message.pk}-deliveries"' in frames[0]
    assert f"@{agent.handle}" in frames[0]
    for viewer in viewers:
        await viewer.disconnect()
