"""What the thread websockets make of input out of bounds: a `since` past a bigint, frames
nested too deep. An error frame or nothing, never a consumer that dies."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from apps.core.ids import MAX_ID
from apps.threads.services import message_post
from tests.conftest import websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]

DEEP = "[" * 50_000 + "]" * 50_000


@pytest.fixture
def token(owner) -> str:
    return token_for(owner.user)


@pytest.mark.parametrize("since", [str(MAX_ID + 1), "9" * 40, "²"])
async def test_a_since_past_a_bigint_is_refused(thread, token, since):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since={since}", token=token)
    await communicator.connect()

    assert (await communicator.receive_json_from())["type"] == "error"
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4400}
    await communicator.disconnect()


async def test_the_largest_since_streams_nothing_and_answers_pings(thread, token):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since={MAX_ID}", token=token)
    await communicator.connect()

    await communicator.send_to(text_data=DEEP)
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong", "last_seq": MAX_ID}
    await communicator.disconnect()


async def test_the_feed_ignores_deep_frames_and_a_resume_past_a_bigint(owner, thread, token):
    communicator = websocket(f"/ws/threads/{thread.pk}/", token=token)
    await communicator.connect()

    await communicator.send_to(text_data=DEEP)
    await communicator.send_json_to({"type": "resume", "since": MAX_ID + 1})
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.send_json_to({"type": "resume", "since": 0})  # still alive, and obeys
    await database_sync_to_async(message_post)(actor=owner, thread=thread, body="after")
    assert "after" in await communicator.receive_from(timeout=2)
    await communicator.disconnect()
