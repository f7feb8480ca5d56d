"""The thread websocket over the real Redis channel layer: two consumers, a message crosses."""

import json

import pytest
from channels.db import database_sync_to_async

from apps.threads import services
from tests.conftest import websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("redis_channel_layer", "worker_db_connections_closed"),
]


async def test_a_message_reaches_two_consumers_through_redis(owner, member, thread):
    first = websocket(
        f"/ws/v1/threads/{thread.pk}/", token=await database_sync_to_async(token_for)(owner.user)
    )
    second = websocket(
        f"/ws/v1/threads/{thread.pk}/", token=await database_sync_to_async(token_for)(member.user)
    )
    assert (await first.connect())[0] and (await second.connect())[0]
    await first.send_json_to({"type": "ping"})  # both have joined the group once they answer
    await second.send_json_to({"type": "ping"})
    assert (await first.receive_json_from(timeout=3))["type"] == "pong"
    assert (await second.receive_json_from(timeout=3))["type"] == "pong"

    message = await database_sync_to_async(services.message_post)(
        actor=owner, thread=thread, body="across redis"
    )

    for communicator in (first, second):
        frame = json.loads(await communicator.receive_from(timeout=5))
        assert frame["type"] == "message.created"
        assert frame["message"]["seq"] == message.seq and frame["message"]["body"] == "across redis"
        await communicator.disconnect()
