"""Executor wake-ups: a direct call in this process, a group of their own across processes."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer

from apps.core.realtime import GroupListener
from apps.runs.events import run_group, run_wake_group
from apps.runs.wakeup import Subscription, wake_run


def test_in_one_process_a_wake_up_is_a_direct_call_with_the_deliveries():
    woken: list[tuple] = []
    with Subscription(4242, lambda deliveries: woken.append(tuple(deliveries))):
        wake_run(4242, ["d1", "d2"])  # type: ignore[list-item]
    wake_run(4242)  # nobody holds it any more: nothing happens

    assert woken == [("d1", "d2")]


@pytest.mark.redis
@pytest.mark.usefixtures("redis_channel_layer")
def test_across_processes_wake_ups_reach_the_executor_and_not_the_run_page():
    """Browsers on the run page are in `run-<id>`; wake-ups travel in a group of their own, to
    the listener an executor in another process keeps (here: one with no local executor)."""
    layer = get_channel_layer()
    loop = asyncio.new_event_loop()
    page = loop.run_until_complete(layer.new_channel(prefix="page."))
    loop.run_until_complete(layer.group_add(run_group(4243), page))
    woken = threading.Event()
    listener = GroupListener(run_wake_group(4243), lambda event: woken.set(), name="test-wake")
    listener.start()
    try:
        # The listener joins its group from its own thread: wake until it hears.
        for _ in range(50):
            wake_run(4243)
            if woken.wait(0.1):
                break
        assert woken.is_set()

        async def page_hears_nothing() -> bool:
            try:
                await asyncio.wait_for(layer.receive(page), 0.5)
            except TimeoutError:
                return True
            return False

        assert loop.run_until_complete(page_hears_nothing())
    finally:
        listener.stop()
        loop.run_until_complete(layer.group_discard(run_group(4243), page))
        loop.close()
