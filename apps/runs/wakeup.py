"""Waking the executor that holds a run (a reply to deliver, a stop to obey).

The database says what to do; a wake-up only says "look now" and may be lost without harm,
since executors also look every second. In this process a wake-up is a direct call that may
carry the new deliveries themselves (the executor then claims them by id instead of looking
them up); across processes (Celery workers) it travels over the channel layer, without them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from apps.core.realtime import broadcast_now
from apps.runs.events import run_group, run_wake_event

logger = logging.getLogger(__name__)

Callback = Callable[[Sequence[Any]], None]  # called with the deliveries handed over, or ()

_local: dict[int, Callback] = {}
_lock = threading.Lock()


def wake_run(run_id: int, deliveries: Sequence[Any] = ()) -> None:
    """Wake the executor of `run_id`; `deliveries` (committed, pending, for its agent in its
    thread) are handed over when that executor is in this process."""
    with _lock:
        callback = _local.get(run_id)
    if callback is not None:
        callback(deliveries)
    elif not isinstance(get_channel_layer(), InMemoryChannelLayer):
        broadcast_now(run_group(run_id), run_wake_event())


class Subscription:
    """While open, wake-ups for `run_id` call `callback` (from any thread)."""

    def __init__(self, run_id: int, callback: Callback) -> None:
        self.run_id = run_id
        self.callback = callback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Subscription:
        with _lock:
            _local[self.run_id] = self.callback
        if not isinstance(get_channel_layer(), InMemoryChannelLayer):
            self._thread = threading.Thread(
                target=self._listen, name=f"run-{self.run_id}-wake", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _local.pop(self.run_id, None)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def _listen(self) -> None:
        try:
            asyncio.run(self._listen_async())
        except Exception:
            logger.exception("wake-up listener for run %s stopped", self.run_id)

    async def _listen_async(self) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel(prefix=f"run{self.run_id}.")
        group = run_group(self.run_id)
        await layer.group_add(group, channel)
        try:
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                except TimeoutError:
                    continue
                self.callback(())
        finally:
            await layer.group_discard(group, channel)
