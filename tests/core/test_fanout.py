"""The per-process fan-out: one layer subscription per group, and each socket's ordered outbox.

The outbox tests drive it with a send of their own that can be made to wait, as a server's
does when a socket's buffer is full (the real servers are exercised by the consumer tests and
bench/feed.py); the hub tests use the embedded channel layer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from apps.core.fanout import FanoutHub, Outbox

pytestmark = pytest.mark.usefixtures("in_memory_channel_layer")


class GatedSend:
    """An ASGI send that records each message; while `gate` is clear, it waits first."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_on: Any = object()  # a text no frame has, unless a test sets one

    async def __call__(self, message: dict[str, Any]) -> None:
        if not self.gate.is_set():
            await self.gate.wait()
        if message.get("text") == self.fail_on:
            raise OSError("the socket is gone")
        self.sent.append(message.get("text", message.get("code")))


def frame(text: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": text}


async def test_a_send_the_server_takes_at_once_needs_no_task():
    send = GatedSend()
    outbox = Outbox(send)
    tasks = len(asyncio.all_tasks())
    for i in range(5):
        outbox.put(frame(str(i)))
    assert send.sent == ["0", "1", "2", "3", "4"]  # all sent inline, before any await
    assert len(asyncio.all_tasks()) == tasks
    assert outbox.waiting == 0


async def test_frames_behind_a_waiting_send_keep_their_order():
    send = GatedSend()
    outbox = Outbox(send)
    outbox.put(frame("a"))
    send.gate.clear()
    outbox.put(frame("b"))  # waits for the socket
    outbox.put(frame("c"))
    waiter = asyncio.ensure_future(outbox.send(frame("d")))  # the consumer's own send
    await asyncio.sleep(0)  # it has queued "d"
    outbox.put(frame("e"))
    await asyncio.sleep(0.01)
    assert send.sent == ["a"]
    assert outbox.waiting == 3
    assert not waiter.done()

    send.gate.set()
    await asyncio.wait_for(waiter, 1)  # returns once "d" is sent, not the whole backlog
    await asyncio.sleep(0.01)
    assert send.sent == ["a", "b", "c", "d", "e"]
    assert outbox.waiting == 0
    outbox.put(frame("f"))  # inline again
    assert send.sent[-1] == "f"


async def test_an_inline_send_error_reaches_the_consumer_and_a_put_error_is_dropped():
    send = GatedSend()
    send.fail_on = "boom"
    outbox = Outbox(send)
    with pytest.raises(OSError):
        await outbox.send(frame("boom"))
    outbox.put(frame("boom"))  # logged, not raised into the hub
    outbox.put(frame("after"))
    assert send.sent == ["after"]


async def test_a_viewer_that_falls_too_far_behind_is_closed_not_buffered(monkeypatch):
    monkeypatch.setattr(Outbox, "MAX_BACKLOG", 3)
    send = GatedSend()
    outbox = Outbox(send)
    send.gate.clear()
    for i in range(10):
        outbox.put(frame(str(i)))
    assert outbox.waiting == 1  # only the close is left waiting
    send.gate.set()
    await asyncio.sleep(0.01)
    # The first frame was already on its way; the rest gave way to the close. The client
    # reconnects and resumes from the last seq it has.
    assert send.sent == ["0", Outbox.CLOSE_TOO_SLOW]


async def test_closing_the_outbox_cancels_a_waiting_send():
    send = GatedSend()
    outbox = Outbox(send)
    send.gate.clear()
    outbox.put(frame("stuck"))
    waiter = asyncio.ensure_future(outbox.send(frame("next")))
    await asyncio.sleep(0)
    outbox.close()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 1)
    outbox.put(frame("ignored"))
    send.gate.set()
    await asyncio.sleep(0.01)
    assert send.sent == []


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[str] = []
        self.fail = fail

    def hub_event(self, event: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("a broken subscriber")
        self.events.append(event["n"])


async def _until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("timed out")


async def test_the_hub_subscribes_once_per_group_and_hands_each_event_to_every_member():
    layer = get_channel_layer()
    hub = FanoutHub.for_running_loop()
    assert FanoutHub.for_running_loop() is hub
    viewers = [Recorder() for _ in range(50)]
    broken = Recorder(fail=True)
    await hub.join("thread-1", broken)
    await asyncio.gather(*(hub.join("thread-1", v) for v in viewers))
    assert len(layer.groups["thread-1"]) == 1  # one layer member, however many viewers
    assert hub.members("thread-1") == 51

    for n in range(3):
        await layer.group_send("thread-1", {"type": "feed.messages", "n": n})
    await _until(lambda: all(v.events == [0, 1, 2] for v in viewers))  # the broken one aside

    hub.leave("thread-1", broken)
    hub.leave("thread-1", viewers[0])
    await layer.group_send("thread-1", {"type": "feed.messages", "n": 3})
    await _until(lambda: viewers[1].events[-1:] == [3])
    assert viewers[0].events == [0, 1, 2]


async def test_the_last_viewer_leaving_ends_the_subscription():
    layer = get_channel_layer()
    hub = FanoutHub.for_running_loop()
    one, two = Recorder(), Recorder()
    await hub.join("thread-2", one)
    await hub.join("thread-2", two)
    hub.leave("thread-2", one)
    hub.leave("thread-2", two)
    hub.leave("thread-2", two)  # twice is harmless
    await _until(lambda: "thread-2" not in layer.groups)
    await _until(lambda: not layer.channels)
    assert hub.groups == {}

    await hub.join("thread-2", one)  # a new viewer subscribes afresh
    await layer.group_send("thread-2", {"type": "feed.messages", "n": 7})
    await _until(lambda: one.events == [7])
    hub.leave("thread-2", one)


async def test_viewers_joining_while_the_subscription_is_made_all_get_the_next_event():
    layer = get_channel_layer()
    hub = FanoutHub.for_running_loop()
    viewers = [Recorder() for _ in range(5)]
    # All start before the first one's group_add has finished.
    await asyncio.gather(*(hub.join("thread-3", v) for v in viewers))
    await layer.group_send("thread-3", {"type": "feed.messages", "n": 1})
    await _until(lambda: all(v.events == [1] for v in viewers))
    for v in viewers:
        hub.leave("thread-3", v)
