"""Removing a member: their history stays, their access goes (requests and open sockets)."""

import pytest
from channels.db import database_sync_to_async

from apps.runs.models import Run
from apps.teams.services import membership_remove
from apps.threads.models import Message
from apps.threads.services import message_post
from tests.conftest import api_client_for, assert_closed_with, websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]


def api_status(user, path: str) -> int:
    return api_client_for(user).get(path).status_code


async def test_a_removed_member_keeps_their_messages_and_loses_every_socket(
    owner, member, team, thread, agent
):
    token = await database_sync_to_async(token_for)(member.user)
    owner_token = await database_sync_to_async(token_for)(owner.user)
    message = await database_sync_to_async(message_post)(
        actor=member, thread=thread, body="notes from me"
    )
    run = await database_sync_to_async(Run.objects.create)(
        team=team, agent=agent, thread=thread, prompt="x", harness=agent.harness
    )
    paths = [f"/ws/teams/{team.pk}/", f"/ws/v1/threads/{thread.pk}/", f"/ws/runs/{run.pk}/"]
    theirs = [websocket(path, token=token) for path in paths]
    ours = websocket(f"/ws/teams/{team.pk}/", token=owner_token)
    for communicator in [*theirs, ours]:
        connected, _ = await communicator.connect()
        assert connected

    await database_sync_to_async(membership_remove)(actor=owner, membership=member)

    for communicator in theirs:
        assert await communicator.receive_output(timeout=2) == {
            "type": "websocket.close",
            "code": 4404,
        }
        await communicator.disconnect()
    assert await ours.receive_nothing(timeout=0.3)
    await ours.disconnect()
    for path in paths:
        await assert_closed_with(websocket(path, token=token), 4404)
    kept = await database_sync_to_async(Message.objects.get)(pk=message.pk)
    assert kept.author_user_id == member.user_id and kept.body == "notes from me"
    assert (
        await database_sync_to_async(api_status)(member.user, f"/api/v1/threads/{thread.pk}/")
        == 404
    )
