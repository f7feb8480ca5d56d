"""Fan-out inside one server process: one channel-layer subscription per group, however many
of the process's websockets watch it.

With a channels group per socket, every broadcast becomes one layer message per viewer, each
queued, received and dispatched by its consumer's own task before it reaches the server
(bench/feed.py: more than half of daphne's CPU at 200 viewers). Here the process joins the
layer group once; each event is received once and handed to the local subscribers with a
plain method call, and each of them gives the server its (shared, pre-encoded) frame through
an `Outbox` without a task of its own. The database stays the source of truth: a subscriber
still checks seqs and backfills what it did not get, exactly as before.

`Outbox` keeps one connection's frames in order without a task per frame: a send the server
takes at once (daphne and uvicorn both do, unless the socket's buffer is full) runs inline;
only one that has to wait gets a task, and later frames queue behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from channels.layers import get_channel_layer
from channels.sessions import InstanceSessionWrapper

from apps.core.wire import DaphneWire, WireText

logger = logging.getLogger(__name__)

Event = dict[str, Any]
Send = Callable[[Any], Awaitable[None]]  # an ASGI send (channels' stubs type its events)

# channels_redis forgets a group member after its group_expiry (a day by default): the one
# subscription of a long-lived process renews its membership well before that.
RENEW_SECONDS = 3600.0


class Subscriber(Protocol):
    def hub_event(self, event: Event) -> None:
        """Called on the event loop for each event sent to a group the subscriber joined;
        must not block (queue slow work on a task of its own)."""


def server_send(send: Send) -> Send:
    """The server's own `send` under channels' session middleware, which only acts on
    `http.response.start` but reads the session on every message it passes on."""
    wrapper = getattr(send, "__self__", None)
    if isinstance(wrapper, InstanceSessionWrapper):
        real: Send = wrapper.real_send
        return real
    return send


class Outbox:
    """One connection's outgoing ASGI messages, sent in order.

    `put` (sync) starts the send inline; when the server's send has to wait (a full socket
    buffer), the rest of that send and every later message go on one task, in order. A put
    send that fails is logged and dropped: the socket is going away and its consumer hears so.
    A viewer so slow that MAX_BACKLOG frames wait is closed with CLOSE_TOO_SLOW instead of
    held in memory; the client reconnects and resumes from its last seq.
    """

    MAX_BACKLOG = 2000  # the channels layer's per-socket capacity that this replaces
    CLOSE_TOO_SLOW = 1013  # "try again later"

    def __init__(self, send: Send) -> None:
        self._send = send
        # Under daphne, a shared frame's bytes go straight to the socket (apps.core.wire).
        self._wire = DaphneWire.for_send(send)
        # Not None while a send waits: what comes after it, each with the future of a
        # `send()` caller waiting for it (None for a `put`).
        self._backlog: deque[tuple[Event, asyncio.Future[None] | None]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def waiting(self) -> int:
        return len(self._backlog) if self._backlog is not None else 0

    def put(self, message: Event) -> None:
        if self._closed:
            return
        if self._backlog is not None:
            if len(self._backlog) >= self.MAX_BACKLOG:
                self._too_slow()
                return
            self._backlog.append((message, None))
            return
        try:
            if self._wire is not None and type(message) is WireText and self._wire.write(message):
                return
            self._start(message)
        except Exception:
            logger.debug("websocket send failed", exc_info=True)

    async def send(self, message: Event) -> None:
        """Send after everything put before it; return once the server has taken it. An error
        of a send made at once reaches the caller, as a plain send's does."""
        if self._closed:
            return
        if self._backlog is None:
            waiting = self._start(message, wait=True)
            if waiting is not None:
                await waiting
            return
        done = asyncio.get_running_loop().create_future()
        self._backlog.append((message, done))
        await done

    def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()

    def _start(self, message: Event, *, wait: bool = False) -> asyncio.Future[None] | None:
        """Send inline; if the send has to wait, finish it on a task and return a future of
        its end when asked to (`wait`)."""
        coro = self._send(message)
        assert isinstance(coro, Coroutine)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return None
        loop = asyncio.get_running_loop()
        done = loop.create_future() if wait else None
        self._backlog = deque()
        self._task = loop.create_task(self._finish(coro, yielded, done))
        return done

    def _too_slow(self) -> None:
        assert self._backlog is not None
        for _, done in self._backlog:
            _settle(done, ConnectionError("the viewer was too slow and is closed"))
        self._backlog.clear()
        self._backlog.append(({"type": "websocket.close", "code": self.CLOSE_TOO_SLOW}, None))
        self._closed = True  # what comes after the close is not sent
        logger.info("closing a websocket whose viewer fell %d frames behind", self.MAX_BACKLOG)

    async def _finish(
        self, coro: Coroutine[Any, Any, None], yielded: Any, first: asyncio.Future[None] | None
    ) -> None:
        try:
            try:
                await _resume(coro, yielded)
            except Exception as exc:
                logger.debug("websocket send failed", exc_info=True)
                _settle(first, exc)
            else:
                _settle(first, None)
            while self._backlog:
                message, done = self._backlog.popleft()
                try:
                    await self._send(message)
                except Exception as exc:
                    logger.debug("websocket send failed", exc_info=True)
                    _settle(done, exc)
                else:
                    _settle(done, None)
        finally:  # cancelled (the socket closed): nobody waits for what was left
            if first is not None and not first.done():
                first.cancel()
            for _, done in self._backlog or ():
                if done is not None and not done.done():
                    done.cancel()
            self._backlog = None
            self._task = None


def _settle(future: asyncio.Future[None] | None, error: BaseException | None) -> None:
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


async def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Run a coroutine that has been stepped once to the end, as a Task would: wait for what
    it yielded (an asyncio future, or None for a bare yield), step it again, and so on."""
    try:
        while True:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False
                await asyncio.wait([yielded])
            try:
                yielded = coro.send(None)
            except StopIteration:
                return
    except BaseException:
        coro.close()
        raise


Emit = Callable[[Event], None]


class Orderer(Protocol):
    """Stands between a group's subscription and its members (`FanoutHub.join(order=)`, which
    makes it with the group's `emit`): gets each event as it comes off the layer and hands the
    members, through `emit`, what they should see and when (apps.threads.ordering puts a
    thread's messages back in seq order once per process, instead of once per viewer)."""

    def event(self, event: Event) -> None:
        """On the event loop, for each event of the group; must not block."""

    def close(self) -> None:
        """The group's last member left: drop what is held, cancel what is pending."""


class _Group:
    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.members: dict[Subscriber, None] = {}  # a dict keeps join order
        self.ready: asyncio.Future[None] = loop.create_future()
        self.channel = ""
        self.pump: asyncio.Task[None] | None = None
        self.orderer: Orderer | None = None

    def emit(self, event: Event) -> None:
        for subscriber in list(self.members):
            try:
                subscriber.hub_event(event)
            except Exception:
                logger.exception("a subscriber of %s failed on %s", self.name, event.get("type"))


class FanoutHub:
    """The groups this event loop's sockets watch; one hub per loop (`for_running_loop`)."""

    _hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FanoutHub] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.groups: dict[str, _Group] = {}
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    def for_running_loop(cls) -> FanoutHub:
        loop = asyncio.get_running_loop()
        hub = cls._hubs.get(loop)
        if hub is None:
            hub = cls._hubs[loop] = cls(loop)
        return hub

    async def join(
        self, group: str, subscriber: Subscriber, order: Callable[[Emit], Orderer] | None = None
    ) -> None:
        """Once this returns, every event sent to `group` reaches `subscriber.hub_event`
        (through the group's Orderer, made by `order` when the first member joins)."""
        entry = self.groups.get(group)
        if entry is None:
            entry = self.groups[group] = _Group(group, self.loop)
            entry.orderer = order(entry.emit) if order is not None else None
            try:
                layer = get_channel_layer()
                assert layer is not None, "fan-out needs a channel layer"
                # Every concrete layer takes a prefix; channels' base class stub does not.
                entry.channel = await layer.new_channel(prefix="hub.")  # type: ignore[call-arg]
                await layer.group_add(group, entry.channel)
            except BaseException as exc:
                if self.groups.get(group) is entry:
                    del self.groups[group]
                entry.ready.set_exception(exc)
                entry.ready.exception()  # retrieved: waiters re-raise it, none is required
                raise
            entry.pump = self.loop.create_task(self._pump(group, entry))
            entry.ready.set_result(None)
            if self._renewer is None:
                self._renewer = self.loop.create_task(self._renew())
        else:
            try:
                await asyncio.shield(entry.ready)
            except BaseException:
                self._drop_if_empty(group, entry)
                raise
        entry.members[subscriber] = None

    def leave(self, group: str, subscriber: Subscriber) -> None:
        entry = self.groups.get(group)
        if entry is not None:
            entry.members.pop(subscriber, None)
            self._drop_if_empty(group, entry)

    def members(self, group: str) -> int:
        entry = self.groups.get(group)
        return len(entry.members) if entry is not None else 0

    def _drop_if_empty(self, group: str, entry: _Group) -> None:
        if entry.members or not entry.ready.done() or self.groups.get(group) is not entry:
            return
        del self.groups[group]
        if entry.pump is not None:
            entry.pump.cancel()
        if entry.orderer is not None:
            entry.orderer.close()
        if entry.channel:
            self.loop.create_task(self._discard(group, entry.channel))

    async def _discard(self, group: str, channel: str) -> None:
        layer = get_channel_layer()
        try:
            if layer is not None:
                await layer.group_discard(group, channel)
        except Exception:
            logger.warning("leaving %s failed; the layer expires it", group, exc_info=True)

    async def _pump(self, group: str, entry: _Group) -> None:
        layer = get_channel_layer()
        assert layer is not None
        while True:
            try:
                event = await layer.receive(entry.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A layer outage (Redis down): subscribers backfill from the database once
                # events flow again, so wait and retry rather than end the subscription.
                logger.warning("receiving for %s failed; retrying", group, exc_info=True)
                await asyncio.sleep(1.0)
                continue
            if entry.orderer is None:
                entry.emit(event)
                continue
            try:
                entry.orderer.event(event)
            except Exception:
                logger.exception("ordering %s failed on %s", group, event.get("type"))
                entry.emit(event)  # as it came: the members keep their own order too

    async def _renew(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            for group, entry in list(self.groups.items()):
                if entry.ready.done() and entry.channel:
                    with contextlib.suppress(Exception):
                        await layer.group_add(group, entry.channel)
