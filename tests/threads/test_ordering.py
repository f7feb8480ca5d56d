"""A thread's live batches put back in seq order once per process (apps.threads.ordering)."""

import asyncio
import json
from typing import Any
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.threads import events, ordering, services
from apps.threads.consumers import ThreadStreamConsumer
from apps.threads.models import Message
from apps.threads.ordering import ThreadOrder
from tests.conftest import websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed", "in_memory_channel_layer"),
]


@database_sync_to_async
def post_silently(actor, thread, body: str) -> Message:
    """Stored, with its broadcast lost (the test sends it itself, or never)."""
    with mock.patch("apps.core.realtime.broadcast_now"):
        return services.message_post(actor=actor, thread=thread, body=body)


@database_sync_to_async
def batch(message: Message) -> dict[str, Any]:
    message = Message.objects.select_related("author_user").get(pk=message.pk)
    return events.messages_event([message], events.json_item)


class Emitted:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    @property
    def seqs(self) -> list[list[int]]:
        return [[m["seq"] for m in e.get("messages", [])] for e in self.events]


@pytest.fixture
def short_grace(monkeypatch):
    monkeypatch.setattr(ordering, "GAP_GRACE_SECONDS", 0.05)


async def test_crossed_batches_are_passed_on_in_seq_order_without_a_database_read(
    owner, thread, short_grace
):
    emit = Emitted()
    order = ThreadOrder(thread, events.json_item, emit)  # the thread as read before these posts
    one, two, three = [await post_silently(owner, thread, f"m{i}") for i in range(3)]
    with mock.patch.object(ordering, "load_items", side_effect=AssertionError("read")) as load:
        order.event(await batch(one))
        order.event(await batch(three))  # crossed: held
        assert emit.seqs == [[1]]
        order.event(await batch(two))
        await asyncio.sleep(0.1)  # past the grace period: nothing left to read
    assert emit.seqs == [[1], [2, 3]]
    assert load.call_count == 0 and order.held == {} and order.filler is None


async def test_a_gap_that_stays_open_is_read_once_and_passed_on_before_what_was_held(
    owner, thread, short_grace
):
    emit = Emitted()
    order = ThreadOrder(thread, events.json_item, emit)
    lost = [await post_silently(owner, thread, f"lost {i}") for i in range(2)]
    after = await post_silently(owner, thread, "after")
    reads = []
    real_load = ordering.load_items

    def load(thread, item_for, since, limit, upto):
        reads.append((since, upto))
        return real_load(thread, item_for, since, limit, upto)

    with mock.patch.object(ordering, "load_items", load):
        order.event(await batch(after))
        assert emit.seqs == []
        for _ in range(100):
            if emit.events and not order.held:
                break
            await asyncio.sleep(0.01)
    assert reads == [(0, 3)]
    assert emit.seqs == [[1, 2], [3]]
    assert [m["json"]["body"] for m in emit.events[0]["messages"]] == [m.body for m in lost]
    assert json.loads(emit.events[0]["messages"][0]["frame"])["message"]["seq"] == 1

    # The lost broadcasts turn up late: every member has had them already.
    order.event(await batch(lost[0]))
    assert emit.seqs == [[1, 2], [3]]


async def test_other_events_go_on_as_they_came_and_close_drops_what_is_held(owner, thread):
    emit = Emitted()
    order = ThreadOrder(thread, events.json_item, emit)
    await post_silently(owner, thread, "never broadcast")
    later = await post_silently(owner, thread, "held")
    order.event(await batch(later))
    delivery = {"type": "feed.delivery", "message": later.pk}
    order.event(delivery)
    assert emit.events == [delivery]
    filler = order.filler
    assert filler is not None
    order.close()
    await asyncio.sleep(0)
    assert order.held == {} and filler.cancelled()


@pytest.fixture
def token(owner) -> str:
    return token_for(owner.user)


async def test_viewers_of_one_process_get_crossed_broadcasts_in_order_from_one_ordering(
    owner, thread, token, short_grace
):
    viewers = [websocket(f"/ws/v1/threads/{thread.pk}/?since=0", token=token) for _ in range(3)]
    for viewer in viewers:
        assert (await viewer.connect())[0]
        await viewer.send_to(text_data='{"type": "ping"}')  # answered once it is streaming
        assert json.loads(await viewer.receive_from(timeout=2))["type"] == "pong"
    first, second = [await post_silently(owner, thread, f"crossed {i}") for i in range(2)]
    layer = get_channel_layer()
    # Each viewer takes the in-order path (hub_event → forward_now): none holds a batch of
    # its own (feed_messages, on a task) or reads a gap (load_items).
    slow_path = AssertionError("a viewer put the batches in order itself")
    with (
        mock.patch.object(ThreadStreamConsumer, "feed_messages", side_effect=slow_path),
        mock.patch.object(ThreadStreamConsumer, "load_items", side_effect=slow_path),
    ):
        # The second commit's broadcast arrives first.
        await layer.group_send(events.thread_group(thread.pk), await batch(second))
        await layer.group_send(events.thread_group(thread.pk), await batch(first))
        for viewer in viewers:
            frames = [json.loads(await viewer.receive_from(timeout=2)) for _ in range(2)]
            assert [f["message"]["seq"] for f in frames] == [1, 2]
            assert await viewer.receive_nothing(timeout=0.1)
    for viewer in viewers:
        await viewer.disconnect()
