"""Waking the executor that holds a run (a reply to deliver, a stop to obey).

The database says what to do; a wake-up only says "look now" and may be lost without harm,
since executors also look every second. In this process a wake-up is a direct call that may
carry the new deliveries themselves (the executor then claims them by id instead of looking
them up); across processes (Celery workers) it travels over the channel layer, without them,
in a group of its own (browsers on the run page are in another).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from apps.core.realtime import GroupListener, broadcast_now, layer_spans_processes
from apps.runs.events import run_wake_event, run_wake_group
from apps.threads.models import Delivery

Callback = Callable[[Sequence[Delivery]], None]  # called with the deliveries handed over, or ()

# The executors this process holds, by run id: a wake-up for one of them is a direct call.
_local: dict[int, Callback] = {}
_lock = threading.Lock()


def wake_run(run_id: int, deliveries: Sequence[Delivery] = ()) -> None:
    """Wake the executor of `run_id`; `deliveries` (committed, pending, for its agent in its
    thread) are handed over when that executor is in this process."""
    with _lock:
        callback = _local.get(run_id)
    if callback is not None:
        callback(deliveries)
    elif layer_spans_processes():
        broadcast_now(run_wake_group(run_id), run_wake_event())


class Subscription:
    """While open, wake-ups for `run_id` call `callback` (from any thread)."""

    def __init__(self, run_id: int, callback: Callback) -> None:
        self.run_id = run_id
        self.callback = callback
        self._listener: GroupListener | None = None

    def __enter__(self) -> Subscription:
        with _lock:
            _local[self.run_id] = self.callback
        if layer_spans_processes():
            self._listener = GroupListener(
                run_wake_group(self.run_id),
                lambda event: self.callback(()),
                name=f"run-{self.run_id}-wake",
            ).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with _lock:
            _local.pop(self.run_id, None)
        if self._listener is not None:
            self._listener.stop()
