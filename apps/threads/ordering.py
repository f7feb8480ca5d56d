"""A thread's live messages put back in seq order once per server process, not per viewer.

Posts commit in seq order, but their broadcasts can cross: two server processes (or two
request threads of one) each publish on commit, and the layer hands them over in the order
they were published. Each viewer's consumer keeps its own order (apps.threads.consumers), but
there an out-of-order batch costs a task per viewer, and a gap still open after the grace
period costs a database read per viewer: with two servers at 80 posts/s, the viewers' reads
became the largest cost of each process and the feed fell behind (bench/scale.py).

`ThreadOrder` is the thread group's Orderer in the process's FanoutHub: a batch that follows
the last seq it passed on goes on at once; one after a gap is held until the gap closes; a gap
still open after GAP_GRACE_SECONDS is read from the database once (which has it: seqs commit
in order) and passed on before what was held. A batch at or before the last seq passed on is
dropped (every member has had it); any other event goes on as it came. The consumers still
check every seq, so a mistake here costs them work, never a message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

from apps.core.fanout import Emit, Event
from apps.threads import selectors
from apps.threads.models import Message, Thread

logger = logging.getLogger(__name__)

# How long a batch after a gap waits for the ones before it before the gap is read from the
# database: crossed broadcasts usually close it within milliseconds.
GAP_GRACE_SECONDS = 0.25
FILL_CHUNK = 500  # messages per database read of a gap


class ThreadOrder:
    """The Orderer of one thread's group (JSON or HTML: `item_for` builds its items)."""

    def __init__(
        self, thread: Thread, item_for: Callable[[Message], dict[str, Any]], emit: Emit
    ) -> None:
        self.thread = thread
        self.item_for = item_for
        self.emit = emit
        # Every seq up to here has been passed on (or was committed before the first viewer
        # read the thread: that viewer's own backfill has it).
        self.last = thread.last_seq
        self.held: dict[int, dict[str, Any]] = {}
        self.filler: asyncio.Task[None] | None = None

    def event(self, event: Event) -> None:
        emit = self.emit
        items = event.get("messages") if event.get("type") == "feed.messages" else None
        if not items:
            emit(event)
            return
        first, end = items[0]["seq"], items[-1]["seq"]
        if not self.held and first == self.last + 1:  # the usual case: next in line
            self.last = end
            emit(event)
            return
        if end <= self.last:
            # Late (its gap was read from the database): every member has had these seqs, and
            # one that joins later reads them itself, after joining.
            return
        for item in items:
            if item["seq"] > self.last:
                self.held.setdefault(item["seq"], item)
        self._release()
        if self.held and self.filler is None:
            self.filler = asyncio.get_running_loop().create_task(self._fill())

    def close(self) -> None:
        self.held.clear()
        if self.filler is not None:
            self.filler.cancel()
            self.filler = None

    def _release(self) -> None:
        """Pass on what now follows the last seq, as one batch."""
        ready = []
        while (item := self.held.pop(self.last + 1, None)) is not None:
            ready.append(item)
            self.last += 1
        if ready:
            self._emit(ready)

    def _emit(self, items: list[dict[str, Any]]) -> None:
        self.emit({"type": "feed.messages", "thread": self.thread.pk, "messages": items})

    async def _fill(self) -> None:
        try:
            while self.held:
                await asyncio.sleep(GAP_GRACE_SECONDS)
                while self.held and min(self.held) > self.last + 1:
                    upto = min(self.held)
                    try:
                        items = await database_sync_to_async(load_items)(
                            self.thread, self.item_for, self.last, FILL_CHUNK, upto
                        )
                    except Exception:
                        # The consumers read the gap themselves (and fail or not on their own).
                        logger.warning(
                            "reading a gap of thread %s failed", self.thread.pk, exc_info=True
                        )
                        items = []
                    # Meanwhile the gap may have closed (and more may have come).
                    items = [item for item in items if item["seq"] > self.last]
                    if items:
                        self.last = items[-1]["seq"]
                        self._emit(items)
                    whole = len(items) < FILL_CHUNK
                    if whole:  # past the gap: seqs the database lacks too are skipped
                        self.last = max(self.last, upto - 1)
                    self._release()
                    if whole:
                        break  # a gap after this one gets its grace period too
        finally:
            self.filler = None


def load_items(
    thread: Thread,
    item_for: Callable[[Message], dict[str, Any]],
    since: int,
    limit: int,
    upto: int | None,
) -> list[dict[str, Any]]:
    """Stored messages after `since` (and before `upto`), built by `item_for`; a worker
    thread's work, never the event loop's (the consumers' backfill reads through it too)."""
    messages = selectors.messages_after(thread=thread, since=since, limit=limit)
    return [item_for(m) for m in messages if upto is None or m.seq < upto]
