"""Telling the executor of a run that one of its approvals was answered.

The same pattern as apps.runs.wakeup (which this layer may not import): in this process a
direct call; across processes (a Celery worker holds the run) a "look now" in the group
`approvals-run-<id>` over the channel layer. The database holds the answer; a lost wake-up
only delays it until the executor's next look (every second while it waits).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from apps.core.realtime import GroupListener, broadcast_now, layer_spans_processes

Callback = Callable[[], None]

_local: dict[int, Callback] = {}
_lock = threading.Lock()


def approvals_group(run_id: int) -> str:
    return f"approvals-run-{run_id}"


def notify_run(run_id: int) -> None:
    """An approval of `run_id` was answered: its executor should look now."""
    with _lock:
        callback = _local.get(run_id)
    if callback is not None:
        callback()
    elif layer_spans_processes():
        broadcast_now(approvals_group(run_id), {"type": "approvals.look", "run": run_id})


class Subscription:
    """While open, answers to approvals of `run_id` call `callback` (from any thread)."""

    def __init__(self, run_id: int, callback: Callback) -> None:
        self.run_id = run_id
        self.callback = callback
        self._listener: GroupListener | None = None

    def __enter__(self) -> Subscription:
        with _lock:
            _local[self.run_id] = self.callback
        if layer_spans_processes():
            self._listener = GroupListener(
                approvals_group(self.run_id),
                lambda event: self.callback(),
                name=f"run-{self.run_id}-approvals",
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
