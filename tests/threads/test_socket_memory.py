"""Websocket memory after close: nothing a closed socket used stays referenced.

Issue 9 saw a daphne's RSS stay up after 2,000 sockets closed. A process's RSS seldom falls
after a peak (the allocator keeps freed arenas for reuse), so these tests count what would be
a leak instead: live consumer objects, channel-layer channels, group memberships and the
per-channel loop entries, and the connection-cap counts, after sockets open, stream and close.
"""

from __future__ import annotations

import gc
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.core.websocket import ConnectionCapMiddleware
from apps.threads import events, services
from apps.threads.consumers import ThreadStreamConsumer
from tests.conftest import websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]

SOCKETS = 60


def live_consumers() -> int:
    gc.collect()
    # type(), not isinstance(): a dead weakref proxy among the objects raises on isinstance.
    return sum(issubclass(type(o), ThreadStreamConsumer) for o in gc.get_objects())


def cap_counts() -> int:
    gc.collect()
    return sum(
        sum(o.open.values())
        for o in gc.get_objects()
        if issubclass(type(o), ConnectionCapMiddleware)
    )


async def open_and_close(owner, thread, token: str, before: int) -> None:
    sockets = []
    for i in range(SOCKETS):
        if i % 2:
            ws = websocket(f"/ws/v1/threads/{thread.pk}/?since=0", token=token)
        else:
            ws = websocket(f"/ws/threads/{thread.pk}/", token=token)
        assert (await ws.connect())[0]
        if not i % 2:
            await ws.send_json_to({"type": "resume", "since": 0})
        sockets.append(ws)
    for ws in sockets:  # each has its backfill (the one message) before the next post
        await ws.receive_from(timeout=5)
    assert live_consumers() == before + SOCKETS  # the count sees them while they live
    # The process subscribes to each of the thread's groups once, however many watch it.
    layer = get_channel_layer()
    assert len(layer.groups[events.thread_group(thread.pk)]) == 1
    assert len(layer.groups[events.thread_html_group(thread.pk)]) == 1
    await database_sync_to_async(services.message_post)(actor=owner, thread=thread, body="live")
    for ws in sockets:
        frame = await ws.receive_from(timeout=5)
        assert "live" in (json.loads(frame)["message"]["body"] if frame[0] == "{" else frame)
    for ws in sockets:
        await ws.disconnect()


async def test_closed_sockets_leave_no_consumer_channel_or_group_behind(owner, thread):
    token = await database_sync_to_async(token_for)(owner.user)
    await database_sync_to_async(services.message_post)(actor=owner, thread=thread, body="first")
    layer = get_channel_layer()
    before = live_consumers()

    await open_and_close(owner, thread, token, before)

    assert live_consumers() == before
    assert cap_counts() == 0
    assert layer.groups == {}, layer.groups
    assert layer.channels == {}, list(layer.channels)[:5]
    layer._clean_expired()  # the loop table is swept with the channels
    layer._last_clean = 0.0
    layer._clean_expired()
    assert layer._loops == {}, list(layer._loops)[:5]
