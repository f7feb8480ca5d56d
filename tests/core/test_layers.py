"""The embedded channel layer: sends from other threads wake the consumer's loop at once."""

from __future__ import annotations

import asyncio
import threading
import time

from apps.core import layers
from apps.core.layers import EmbeddedChannelLayer


async def _receive_after_a_sweep(layer: EmbeddedChannelLayer, channel: str) -> asyncio.Task:
    # A first message, received: its queue is dropped once empty, as channels does.
    await layer.send(channel, {"type": "first"})
    assert (await layer.receive(channel))["type"] == "first"
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)  # now waiting, after the expiry sweep at the start of receive()
    return receiving


async def test_a_send_from_another_thread_wakes_a_consumer_right_after_the_sweep(monkeypatch):
    monkeypatch.setattr(layers, "CLEAN_EVERY_SECONDS", 0.0)  # sweep on every receive
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("watchers", channel)
    receiving = await _receive_after_a_sweep(layer, channel)

    def send_later() -> None:
        time.sleep(0.1)  # the loop is asleep in its selector by then
        layer.group_send_threadsafe("watchers", {"type": "second"})

    threading.Thread(target=send_later).start()

    # Nothing else happens on this loop: only the send can wake it.
    started = time.monotonic()
    message = await asyncio.wait_for(receiving, timeout=2.0)
    assert message["type"] == "second"
    assert time.monotonic() - started < 0.5, "the consumer slept through the send"


async def test_group_send_threadsafe_reaches_every_member_once():
    layer = EmbeddedChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("all", channel)

    threading.Thread(target=layer.group_send_threadsafe, args=("all", {"type": "x"})).start()

    received = [await asyncio.wait_for(layer.receive(c), timeout=1.0) for c in channels]
    assert [m["type"] for m in received] == ["x", "x", "x"]
    assert not layer.has_members("nobody")
