"""The one place that talks to the channel layer.

Services call `broadcast_on_commit`: the event goes out only once the transaction that wrote the
state has committed, so a client that reacts to it by reading the database sees that state.
The event may be given as a builder, so rendering happens after the locks are released.
The database stays the source of truth: a dropped frame is recovered by the client resuming
from its last `seq`.

`GroupListener` is the other direction, for code outside consumers that must hear a group
across processes (an executor in a Celery worker waiting for wake-ups).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeGuard

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

Event = dict[str, Any]


def broadcast_on_commit(group: str, event: Event | Callable[[], Event]) -> None:
    broadcasts_on_commit([(group, event)])


def broadcasts_on_commit(events: list[tuple[str, Event | Callable[[], Event]]]) -> None:
    """Several broadcast_on_commit at once, sent in this order with one hop to the event loop
    (a new message goes to three groups: with Redis each hop from a request thread to the loop
    and back was a separate wake-up of both)."""

    def send() -> None:
        built: list[tuple[str, Event]] = []
        for group, event in events:
            if _nobody_in(group):
                continue  # rendering an event nobody receives is a broadcast's costliest part
            try:
                built.append((group, event() if callable(event) else event))
            except Exception:
                logger.exception("building the event for %s failed", group)
        if built:
            _broadcast_all(built)

    transaction.on_commit(send)


# What a layer may offer beyond channels' interface (apps.core.layers.EmbeddedChannelLayer does).
class _SaysInProcess(Protocol):
    in_process: bool


class _CountsMembers(Protocol):
    def has_members(self, group: str) -> bool: ...


class _SendsFromAnyThread(Protocol):
    def group_send_threadsafe(self, group: str, message: Event) -> None: ...


def _offers(layer: BaseChannelLayer | None, name: str) -> bool:
    """Whether the layer's class has `name` (looked up on the class: channels_redis's pub/sub
    layer forwards unknown instance attributes to a per-event-loop layer, which needs a loop)."""
    return layer is not None and hasattr(type(layer), name)


def _says_in_process(layer: BaseChannelLayer | None) -> TypeGuard[_SaysInProcess]:
    return _offers(layer, "in_process")


def _counts_members(layer: BaseChannelLayer | None) -> TypeGuard[_CountsMembers]:
    return _offers(layer, "has_members")


def _sends_from_any_thread(layer: BaseChannelLayer | None) -> TypeGuard[_SendsFromAnyThread]:
    return _offers(layer, "group_send_threadsafe")


def layer_spans_processes() -> bool:
    """Whether the channel layer reaches other processes (Redis) rather than only this one
    (the embedded default's layer, which says so with `in_process = True`)."""
    layer = get_channel_layer()
    return layer is not None and not (_says_in_process(layer) and layer.in_process)


def _nobody_in(group: str) -> bool:
    """True when the layer can tell the group has no member here; a layer shared with other
    processes (Redis) cannot, so this is False there."""
    layer = get_channel_layer()
    return _counts_members(layer) and not layer.has_members(group)


SEND_TIMEOUT_SECONDS = 10.0


class _SendLoop:
    """One event loop per process, on a thread of its own, for channel-layer sends from
    threads that have no event loop to hop to (a Celery worker's). async_to_sync there starts
    a new loop on a new thread per call, and channels_redis keeps a connection per loop, so
    each send opened, greeted and closed a Redis connection: a quarter of a worker's CPU in
    bench/messaging.py's scaled mode."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child (Celery's prefork pool) inherits the object but not the thread.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="ozweb-layer-sends", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running())
        try:
            future.result(timeout=SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            future.cancel()
            raise


_send_loop = _SendLoop()


def _under_asgiref_loop() -> bool:
    """Whether this thread was started by sync_to_async from a running loop (daphne's request
    and verb threads): async_to_sync then runs the send on that loop, as it should. The same
    test asgiref's AsyncToSync makes."""
    local = SyncToAsync.threadlocal
    return (
        getattr(local, "main_event_loop_pid", None) == os.getpid()
        and getattr(local, "main_event_loop", None) is not None
    )


def broadcast_now(group: str, event: Event) -> None:
    """Send from sync code, in any thread that runs no event loop."""
    _broadcast_all([(group, event)])


def _broadcast_all(events: list[tuple[str, Event]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # The embedded layer takes a send from any thread at once; any other layer is async.
    if _sends_from_any_thread(layer):
        for group, event in events:
            try:
                layer.group_send_threadsafe(group, event)
            except Exception:
                logger.exception("group_send to %s failed", group)
        return
    try:
        if _under_asgiref_loop():
            async_to_sync(_send_all)(layer, events)
        else:
            _send_loop.run(_send_all(layer, events))
    except Exception:
        # A realtime hiccup must never undo or fail a committed write; clients backfill.
        logger.exception("group_send to %s failed", ", ".join(g for g, _ in events))


async def _send_all(layer: BaseChannelLayer, events: list[tuple[str, Event]]) -> None:
    for group, event in events:
        try:
            await layer.group_send(group, event)
        except Exception:
            logger.exception("group_send to %s failed", group)


class GroupListener:
    """While started, calls `callback(event)` from a thread of its own for every event sent to
    `group` through the channel layer (from any process)."""

    POLL_SECONDS = 0.5

    def __init__(self, group: str, callback: Callable[[Event], None], *, name: str) -> None:
        self.group = group
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> GroupListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._listen())
        except Exception:
            logger.exception("listener for %s stopped", self.group)

    async def _listen(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        # Every concrete layer takes a prefix; channels' base class (and so its stub) does not.
        channel = await layer.new_channel(prefix="listener.")  # type: ignore[call-arg]
        await layer.group_add(self.group, channel)
        try:
            while not self._stop.is_set():
                try:
                    event = await asyncio.wait_for(layer.receive(channel), self.POLL_SECONDS)
                except TimeoutError:
                    continue
                self.callback(event)
        finally:
            await layer.group_discard(self.group, channel)
