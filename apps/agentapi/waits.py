"""`delegate(wait=true)` without a thread held while it waits.

The delegation itself is made on a verb thread like any call (apps.agentapi.verbs); what is
left, waiting for the child run's result, is a `ChildWait` that the door awaits on its event
loop. The waits of one event loop are checked together: every CHECK_SECONDS one short call on
a verb thread asks the database about all of them at once (which children have started,
which have ended) and marks newly started children as awaited (`parent_waiting`: their
result then comes back through the call instead of waking the parent a second time). Between
checks no thread is held, so a few hundred waiting delegations cost one query a quarter
second, not a few hundred threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async

from apps.agentapi import payloads, selectors
from apps.agentapi.pool import in_pool
from apps.agentapi.selectors import ChildProgress
from apps.runs.delegation import runs_parent_waiting_set
from apps.threads.models import Delivery

logger = logging.getLogger(__name__)

DELEGATE_WAIT_MAX_SECONDS = 1800
CHECK_SECONDS = 0.25

RunSync = Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]


@dataclass(frozen=True)
class ChildWait:
    """A `delegate(wait=true)` call whose child run has not ended: the rest of the call."""

    delegation: int  # the goal's delivery to the delegate
    child: int | None  # its run, if started (then already marked as awaited)
    timeout: float  # seconds


def child_wait_begin(*, delegation: Delivery, timeout: float) -> ChildWait | None:
    """Right after the delegation, on its verb thread: the wait for its result, its child (if
    started) marked as awaited; None when the child has already ended."""
    child = delegation.run
    if child is not None and child.is_finished:
        return None
    if child is not None:
        runs_parent_waiting_set(run_ids=[child.pk], waiting=True)
    return ChildWait(
        delegation=delegation.pk,
        child=child.pk if child is not None else None,
        timeout=min(max(timeout, 1), DELEGATE_WAIT_MAX_SECONDS),
    )


def _check(*, children: dict[int, int | None], released: list[int]) -> dict[int, ChildProgress]:
    """One check of an event loop's waits (by delegation, the child run known so far):
    children of waits given up are no longer awaited, children started since the last check
    are. A known child is followed to its end, even if the goal goes back to the delegate
    (a child that ended before it took it)."""
    runs_parent_waiting_set(run_ids=released, waiting=False)
    progress = selectors.delegations_progress(children=children)
    started = [
        p.child
        for delegation, known in children.items()
        if known is None and (p := progress[delegation]).child is not None and not p.finished
    ]
    runs_parent_waiting_set(run_ids=started, waiting=True)
    return progress


def _result(*, delegation: int, child: int | None, timed_out: bool) -> dict[str, Any]:
    """What the call answers: the delegation's status, with the child's result if it ended."""
    found = selectors.delegation_get(delegation=delegation)
    status = payloads.delegation_status_payload(
        found, child=selectors.delegation_child_get(delegation=found, child=child)
    )
    if timed_out:
        status["timed_out_waiting"] = True
    return status


@dataclass
class _Waiting:
    child: int | None
    deadline: float  # on the event loop's clock
    done: asyncio.Future[bool]  # True: the child ended; False: timed out


class ChildWaits:
    """The waiting `delegate` calls of one event loop, checked together by one task that runs
    while any is waiting. `run_sync` runs the checks' sync code (a door: on its verb threads).

    A call that is cancelled (its client went away) is given up at the next check like one
    that timed out: its child is no longer awaited, so its result wakes the parent again.
    """

    def __init__(self, run_sync: RunSync, *, shared: bool) -> None:
        self._check = run_sync(_check)
        self._result = run_sync(_result)
        self._shared = shared
        self._waiting: dict[int, _Waiting] = {}
        self._checker: asyncio.Task[None] | None = None

    async def result(self, wait: ChildWait) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(wait.child, loop.time() + wait.timeout, loop.create_future())
        self._waiting[wait.delegation] = waiting
        if self._checker is None or self._checker.done():
            # A shared checker outlives the call that starts it: give it a clean context.
            context = contextvars.Context() if self._shared else None
            self._checker = loop.create_task(self._check_while_waiting(), context=context)
        ended = await waiting.done
        return await self._result(
            delegation=wait.delegation, child=waiting.child, timed_out=not ended
        )

    async def _check_while_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            await asyncio.sleep(CHECK_SECONDS)
            now = loop.time()
            given_up = {
                d: w for d, w in self._waiting.items() if w.done.done() or now >= w.deadline
            }
            for delegation in given_up:
                del self._waiting[delegation]
            watched = dict(self._waiting)
            progress: dict[int, ChildProgress] = {}
            try:
                progress = await self._check(
                    children={d: w.child for d, w in watched.items()},
                    released=[w.child for w in given_up.values() if w.child is not None],
                )
            except Exception:
                logger.exception("agent API: checking %d waiting delegations failed", len(watched))
            for waiting in given_up.values():
                if not waiting.done.done():
                    waiting.done.set_result(False)
            for delegation, waiting in watched.items():
                found = progress.get(delegation)
                if found is None:
                    continue
                waiting.child = found.child
                if found.finished:
                    self._waiting.pop(delegation, None)
                    if not waiting.done.done():
                        waiting.done.set_result(True)


_door_waits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChildWaits] = (
    weakref.WeakKeyDictionary()
)


async def child_result(wait: ChildWait) -> dict[str, Any]:
    """For the doors (on their event loop): the result of a waiting delegate call."""
    loop = asyncio.get_running_loop()
    waits = _door_waits.get(loop)
    if waits is None:
        waits = _door_waits[loop] = ChildWaits(in_pool, shared=True)
    return await waits.result(wait)


def _in_this_thread(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    return sync_to_async(fn, thread_sensitive=True)


def child_result_blocking(wait: ChildWait) -> dict[str, Any]:
    """For sync callers (the DRF views: Django's test client, the schema): the same wait,
    blocking this thread, whose database connection (and transaction) the checks use."""
    return async_to_sync(ChildWaits(_in_this_thread, shared=False).result)(wait)
