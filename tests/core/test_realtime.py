"""apps.core.realtime's sends from threads that run no event loop (a Celery worker's)."""

from __future__ import annotations

import threading

import pytest
import redis

from apps.core.realtime import GroupListener, broadcast_now

SENDS = 20


def _connections_received(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


def test_sends_from_a_plain_thread_share_one_loop_and_connection(redis_channel_layer):
    """async_to_sync there would start a loop, a thread and a Redis connection per send."""
    heard: list[int] = []
    done = threading.Event()

    def hear(event: dict) -> None:
        heard.append(event["n"])
        if len(heard) >= SENDS:
            done.set()

    listener = GroupListener("realtime-test", hear, name="test-listener").start()
    try:
        # The listener joins its group from its own thread: send until it hears.
        for _ in range(50):
            broadcast_now("realtime-test", {"type": "x", "n": -1})
            if heard:
                break
            threading.Event().wait(0.1)
        assert heard
        heard.clear()

        before = _connections_received(redis_channel_layer)
        sender = threading.Thread(
            target=lambda: [
                broadcast_now("realtime-test", {"type": "x", "n": n}) for n in range(SENDS)
            ]
        )
        sender.start()
        sender.join(30)
        assert done.wait(10)
        opened = _connections_received(redis_channel_layer) - before
    finally:
        listener.stop()

    assert [n for n in heard if n >= 0] == list(range(SENDS))  # each once, in order
    assert opened <= 2, f"{opened} Redis connections opened for {SENDS} sends"


@pytest.mark.usefixtures("redis_channel_layer")
def test_a_send_that_fails_is_logged_not_raised(monkeypatch, caplog):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def refused(group: str, message: dict) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(layer, "group_send", refused, raising=False)
    thread = threading.Thread(target=broadcast_now, args=("realtime-test", {"type": "x"}))
    thread.start()
    thread.join(15)
    assert "group_send to realtime-test failed" in caplog.text
