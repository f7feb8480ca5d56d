"""`/ws/teams/{id}/`: the live dashboard."""

import pytest
from channels.db import database_sync_to_async

from apps.agents.models import AgentStatus
from apps.agents.services import agent_delete, agent_set_status
from apps.threads.services import message_post
from tests.conftest import assert_closed_with, websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]


@pytest.fixture
def token(owner) -> str:
    return token_for(owner.user)


async def test_agent_status_changes_are_pushed_as_oob_rows(team, agent, token):
    communicator = websocket(f"/ws/teams/{team.pk}/", token=token)
    connected, _ = await communicator.connect()
    assert connected

    await database_sync_to_async(agent_set_status)(agent=agent, status=AgentStatus.RUNNING)
    frame = await communicator.receive_from(timeout=2)

    assert f'id="agent-{agent.pk}"' in frame
    assert 'hx-swap-oob="true"' in frame
    assert "status-running" in frame
    await communicator.disconnect()


async def test_a_deleted_agent_is_removed(owner, team, agent, token):
    communicator = websocket(f"/ws/teams/{team.pk}/", token=token)
    await communicator.connect()
    agent_id = agent.pk

    await database_sync_to_async(agent_delete)(actor=owner, agent=agent)

    frame = await communicator.receive_from(timeout=2)
    assert frame == f'<div id="agent-{agent_id}" hx-swap-oob="delete"></div>'
    await communicator.disconnect()


async def test_activity_and_unread_counts_are_pushed(member, team, thread, token):
    communicator = websocket(f"/ws/teams/{team.pk}/", token=token)
    await communicator.connect()

    await database_sync_to_async(message_post)(actor=member, thread=thread, body="news from me")
    frame = await communicator.receive_from(timeout=2)

    assert 'hx-swap-oob="afterbegin:#activity"' in frame
    assert "news from me" in frame
    assert 'id="thread-list" hx-swap-oob="true"' in frame
    assert 'title="1 unread"' in frame  # the owner has not read the member's message
    await communicator.disconnect()


async def test_no_credentials_close_with_4401(team):
    await assert_closed_with(websocket(f"/ws/teams/{team.pk}/"), 4401)


async def test_another_team_closes_with_4404(other_team, token):
    await assert_closed_with(websocket(f"/ws/teams/{other_team['team'].pk}/", token=token), 4404)
