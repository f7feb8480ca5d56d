"""Websocket consumers for threads.

Both consumers stream a thread's messages in `seq` order with no gaps and no duplicates: a
live event whose seq is not the next one is held for a moment (concurrent posts commit in seq
order but may broadcast out of order, so the missing event is usually already on its way); if
the gap is still open after GAP_GRACE_SECONDS the consumer reads it from the database (which has
it: seqs commit in order). Events it has already sent are skipped. The process's
apps.threads.ordering.ThreadOrder has usually put crossed broadcasts back in order before they
get here, once for every viewer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.template.loader import render_to_string

from apps.core.consumers import CLOSE_NOT_FOUND
from apps.core.errors import NotFound
from apps.core.fanout import FanoutHub, Outbox, server_send
from apps.core.ids import MAX_ID, bounded_int
from apps.core.json_depth import json_loads
from apps.core.websocket import authenticated_user
from apps.core.wire import WireText
from apps.teams.consumers import MemberConsumer
from apps.teams.models import Membership
from apps.teams.selectors import access_team
from apps.threads import events, selectors, services
from apps.threads.models import Message, Thread
from apps.threads.ordering import GAP_GRACE_SECONDS, ThreadOrder, load_items

logger = logging.getLogger(__name__)
BACKFILL_CHUNK = 500
T = TypeVar("T")
CLOSE_UNAUTHENTICATED = 4401
MARK_READ_EVERY_SECONDS = 5.0


class ThreadStreamConsumer(MemberConsumer, ABC):
    """Common part: authorise, join the thread's group, keep the stream in order.

    Subclasses define `group_for` and `item_for` (which broadcasts they get, and how a stored
    message is built for them), `stream_opened` (where the stream starts), `send_messages`
    (JSON frames or HTML fragments), `live_frames` (the frames of a live batch, built once for
    every viewer in the process) and `feed_delivery` (a delivery changed state).

    The thread's events come through the process's FanoutHub, not a channels group per
    socket: `hub_event` sends an in-order batch at once, and queues anything else (a gap, a
    delivery to render) for `work_inbox`, which handles events one at a time, in order.
    """

    group_for: Callable[[int], str]
    item_for: Callable[[Message], dict[str, Any]]
    user: User
    thread: Thread
    last_sent: int
    streaming: bool

    async def connect(self) -> None:
        user = authenticated_user(self.scope)
        await self.accept()
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        thread_id = int(self.scope["url_route"]["kwargs"]["thread_id"])
        try:
            _, self.thread = await database_sync_to_async(selectors.access_thread)(
                user=user, thread_id=thread_id
            )
        except NotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.follow_membership(team_id=self.thread.team_id, user_id=user.pk)
        self.group = self.group_for(self.thread.pk)
        self.streaming = False
        self.held: list[dict[str, Any]] = []
        self.pending: dict[int, dict[str, Any]] = {}  # live events waiting for a gap to close
        self.gap_task: asyncio.Task[None] | None = None
        self.order_lock = asyncio.Lock()  # forward() and fill_gap() both move last_sent
        self.inbox: deque[dict[str, Any]] | None = None  # not None while work_inbox runs
        self.side_tasks: set[asyncio.Task[Any]] = set()
        # Every send of this consumer (backfill, close) goes through the outbox too, so it
        # stays in order with the frames the hub puts there.
        self.outbox = Outbox(server_send(self.base_send))
        # (channels' stub types each ASGI event; the outbox passes them on as dicts.)
        self.base_send = self.outbox.send  # type: ignore[assignment]
        self.hub = FanoutHub.for_running_loop()
        # The process's viewers of the thread share one ThreadOrder: crossed broadcasts are
        # put back in order (and gaps read) once, not by each viewer.
        thread, item_for = self.thread, self.item_for
        await self.hub.join(
            self.group, self, order=lambda emit: ThreadOrder(thread, item_for, emit)
        )
        await self.stream_opened()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However the consumer ends (a close, an error, a cancelled task), it leaves the
            # hub: a dead subscriber must not keep the process's subscription alive
            # (tests/threads/test_socket_memory.py).
            self.leave_hub()

    def leave_hub(self) -> None:
        if (hub := getattr(self, "hub", None)) is not None:
            hub.leave(self.group, self)
            self.outbox.close()
            for task in [*self.side_tasks, self.gap_task]:
                if task is not None:
                    task.cancel()

    async def websocket_disconnect(self, message: Any) -> None:
        # Leave first, before any await of ours (mark_read) that a slow database or a
        # cancelled close could cut short.
        if (hub := getattr(self, "hub", None)) is not None:
            hub.leave(self.group, self)
        await super().websocket_disconnect(message)

    def hub_event(self, event: dict[str, Any]) -> None:
        """An event of the thread's group, on the event loop: send an in-order batch now."""
        if self.inbox is None:
            if event["type"] == "feed.messages" and self.forward_now(event):
                return
            self.inbox = deque()
            self.spawn(self.work_inbox())
        self.inbox.append(event)

    def forward_now(self, event: dict[str, Any]) -> bool:
        """Handle a live batch without a task if it needs no await: held until the stream
        starts, or sent when it follows last_sent with nothing pending."""
        items = event["messages"]
        if not self.streaming:
            self.held.extend(items)
            return True
        if self.pending or self.order_lock.locked() or not items:
            return False
        following = self.last_sent + 1
        for offset, item in enumerate(items):
            if item["seq"] != following + offset:
                return False
        for frame in self.live_frames(event):
            self.outbox.put(frame)
        self.last_sent = items[-1]["seq"]
        self.live_sent(self.last_sent)
        return True

    @abstractmethod
    def live_frames(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The ASGI messages that send a live batch: the same for every viewer in order, so
        built once per event (cached in it) and shared."""

    def live_sent(self, seq: int) -> None:
        """A live batch up to `seq` went out without a task."""

    async def work_inbox(self) -> None:
        try:
            while self.inbox:
                event = self.inbox.popleft()
                try:
                    await self.dispatch(event)
                except Exception:
                    logger.exception("a thread viewer failed on %s", event.get("type"))
        finally:
            self.inbox = None

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.side_tasks.add(task)
        task.add_done_callback(self.side_tasks.discard)

    @abstractmethod
    async def stream_opened(self) -> None:
        """The socket is in the thread's group: say where the stream starts."""

    @abstractmethod
    async def send_messages(self, items: list[dict[str, Any]]) -> None:
        """Send stored or live messages to this viewer, in the subclass's format."""

    async def disconnect(self, code: int) -> None:
        if (gap_task := getattr(self, "gap_task", None)) is not None:
            gap_task.cancel()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels >= 4.2 hops to a worker thread for close_old_connections() before every
        # handler: one thread round trip per viewer per message (4,000/s for 200 viewers at
        # 20 posts/s), the largest per-delivery cost in bench/feed.py. Every database call in
        # these consumers goes through database_sync_to_async, which closes old connections
        # around itself, so the extra hop buys nothing here.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def query_param(self, name: str) -> str | None:
        values = parse_qs(self.scope.get("query_string", b"").decode()).get(name)
        return values[0] if values else None

    async def start_streaming(self, since: int) -> None:
        """Send everything after `since` from the database, then the held live events."""
        self.last_sent = since
        await self.backfill(upto=None)
        self.streaming = True
        held, self.held = self.held, []
        for item in held:
            await self.forward([item])

    async def backfill(self, upto: int | None) -> None:
        while upto is None or self.last_sent < upto - 1:
            limit = (
                BACKFILL_CHUNK if upto is None else min(BACKFILL_CHUNK, upto - 1 - self.last_sent)
            )
            batch = await database_sync_to_async(self.load_items)(self.last_sent, limit, upto)
            if not batch:
                return
            await self.send_messages(batch)
            self.last_sent = batch[-1]["seq"]

    def load_items(self, since: int, limit: int, upto: int | None) -> list[dict[str, Any]]:
        """Messages after `since` (and before `upto`), built for this consumer's clients in a
        worker thread, never on the event loop."""
        return load_items(self.thread, self.item_for, since, limit, upto)

    async def feed_messages(self, event: dict[str, Any]) -> None:
        if not self.streaming:
            self.held.extend(event["messages"])
            return
        await self.forward(event["messages"])

    async def forward(self, items: list[dict[str, Any]]) -> None:
        """Send what follows last_sent; hold the rest until the gap closes or times out."""
        if not self.pending and not self.order_lock.locked():
            # The usual case, in order with nothing held: send without the lock. forward()
            # runs one event at a time per consumer, and fill_gap only holds the lock while
            # something is pending.
            following = self.last_sent + 1
            if [item["seq"] for item in items] == list(range(following, following + len(items))):
                await self.send_messages(items)
                self.last_sent = items[-1]["seq"]
                return
        async with self.order_lock:
            for item in items:
                if item["seq"] > self.last_sent:
                    self.pending.setdefault(item["seq"], item)
            ready = []
            following = self.last_sent + 1
            while following in self.pending:
                ready.append(self.pending.pop(following))
                following += 1
            if ready:
                await self.send_messages(ready)
                self.last_sent = ready[-1]["seq"]
            if self.pending and self.gap_task is None:
                self.gap_task = asyncio.create_task(self.fill_gap())
            elif not self.pending and self.gap_task is not None:
                self.gap_task.cancel()
                self.gap_task = None

    async def fill_gap(self) -> None:
        """The gap did not close in time (a lost frame): read it from the database."""
        await asyncio.sleep(GAP_GRACE_SECONDS)
        async with self.order_lock:
            self.gap_task = None
            if not self.pending:
                return
            await self.backfill(upto=max(self.pending))
            held = [item for seq, item in sorted(self.pending.items()) if seq > self.last_sent]
            self.pending.clear()
            if held:
                await self.send_messages(held)
                self.last_sent = held[-1]["seq"]


async def shared(event: dict[str, Any], key: str, render: Callable[[int], T], arg: int) -> T:
    """`render(arg)` on a database thread once per event, whatever the number of viewers: the
    hub hands the process's viewers of a thread one event dict, and the first to get here
    renders for all (20 browsers once rendered a delivery row 20 times: bench/runs.py)."""
    task: asyncio.Future[T] | None = event.get(key)
    if task is None:
        task = event[key] = asyncio.ensure_future(database_sync_to_async(render)(arg))
    # Shielded: a viewer that goes away mid-render must not cancel it for the others.
    return await asyncio.shield(task)


def _json_frame(item: dict[str, Any]) -> str:
    frame = item.get("frame")  # pre-encoded by events.json_item
    if frame is None:
        frame = json.dumps({"type": "message.created", "message": item["json"]})
    return str(frame)


def _html_frame(items: list[dict[str, Any]]) -> str:
    html = "".join(item["html"] for item in items)
    return f'<div id="feed-messages" hx-swap-oob="beforeend">{html}</div>'


class ThreadJSONConsumer(ThreadStreamConsumer):
    """`/ws/v1/threads/{id}/?since=<seq>`: every message after seq, then each new one."""

    group_for = staticmethod(events.thread_group)
    item_for = staticmethod(events.json_item)

    async def stream_opened(self) -> None:
        since = self.query_param("since")
        if since is None:
            start = self.thread.last_seq
        elif (seq := bounded_int(since, low=0)) is not None:
            start = seq
        else:
            await self.send(json.dumps({"type": "error", "error": "since must be a number"}))
            await self.close(code=4400)
            return
        await self.start_streaming(start)

    async def send_messages(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            await self.send(_json_frame(item))

    def live_frames(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] | None = event.get("_json_frames")
        if frames is None:
            frames = event["_json_frames"] = [
                WireText(_json_frame(item)) for item in event["messages"]
            ]
        return frames

    async def feed_delivery(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps({"type": "delivery.updated", **event}))

    async def feed_message_updated(self, event: dict[str, Any]) -> None:
        """A message's data changed (an approval card was answered): its new state."""
        if not getattr(self, "streaming", False):
            return
        payload = await database_sync_to_async(self.message_json)(event["message"])
        if payload is not None:
            await self.send(json.dumps({"type": "message.updated", "message": payload}))

    def message_json(self, message_id: int) -> dict[str, Any] | None:
        try:
            message = selectors.message_get(thread=self.thread, message_id=message_id)
        except NotFound:
            return None
        # One not sent yet comes, as it is now, with the stream.
        return events.message_payload(message) if message.seq <= self.last_sent else None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Writes go over HTTP; the socket only answers pings so clients can check liveness.
        try:
            frame = json_loads(text_data or "")
        except ValueError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(json.dumps({"type": "pong", "last_seq": self.last_sent}))
        else:
            await self.send(json.dumps({"type": "error", "error": "send {'type': 'ping'} only"}))


class ThreadFeedConsumer(ThreadStreamConsumer):
    """`/ws/threads/{id}/` for the thread page (htmx ws extension, out-of-band swaps).

    The page opens the socket and then says where it is with `{"type": "resume", "since": N}`
    (the seq of the newest message in its DOM), so a reconnect fetches exactly what it missed.
    """

    group_for = staticmethod(events.thread_html_group)
    item_for = staticmethod(events.html_item)

    async def stream_opened(self) -> None:
        self.last_marked = 0.0

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json_loads(text_data or "")
        except ValueError:  # not JSON, or nested too deep
            return
        if not isinstance(frame, dict) or frame.get("type") != "resume" or self.streaming:
            return
        since = frame.get("since")
        if not isinstance(since, int) or not 0 <= since <= MAX_ID:
            return
        await self.start_streaming(since)
        await self.mark_read(force=True)

    async def send_messages(self, items: list[dict[str, Any]]) -> None:
        await self.send(_html_frame(items))
        await self.mark_read(seq=items[-1]["seq"])

    def live_frames(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] | None = event.get("_html_frames")
        if frames is None:
            text = _html_frame(event["messages"])
            frames = event["_html_frames"] = [WireText(text)]
        return frames

    def live_sent(self, seq: int) -> None:
        now = time.monotonic()
        if now - self.last_marked >= MARK_READ_EVERY_SECONDS:
            self.last_marked = now
            self.spawn(self.mark_read(force=True, seq=seq))

    async def feed_delivery(self, event: dict[str, Any]) -> None:
        if not self.streaming:
            return
        html = await shared(event, "_deliveries_html", self.render_deliveries, event["message"])
        if html:
            await self.send(html)

    async def feed_message_updated(self, event: dict[str, Any]) -> None:
        """A message's data changed (an approval card was answered): swap it in again."""
        if not self.streaming:
            return
        rendered = await shared(event, "_message_html", self.render_message, event["message"])
        # Not shown yet: it comes, as it is now, in order.
        if rendered is not None and rendered[0] <= self.last_sent:
            await self.send(rendered[1])

    def render_message(self, message_id: int) -> tuple[int, str] | None:
        """The message's seq and its card, the same for every viewer (None: not here)."""
        return self._render(message_id, "message")

    def render_deliveries(self, message_id: int) -> str:
        """The message's delivery chips, to swap in ("" when the message is not here)."""
        rendered = self._render(message_id, "deliveries")
        return rendered[1] if rendered is not None else ""

    def _render(self, message_id: int, fragment: str) -> tuple[int, str] | None:
        try:
            message = selectors.message_get(thread=self.thread, message_id=message_id)
        except NotFound:
            return None
        # The chips are the message's prefetched deliveries (Message.delivery_rows).
        html = render_to_string(
            f"threads/thread.html#{fragment}", {"message": message, "oob": True}
        )
        return message.seq, html

    async def mark_read(self, *, force: bool = False, seq: int | None = None) -> None:
        """Record what this viewer has seen: at most every few seconds, and on leaving."""
        now = time.monotonic()
        if force or now - self.last_marked >= MARK_READ_EVERY_SECONDS:
            self.last_marked = now
            await database_sync_to_async(services.thread_mark_read)(
                thread=self.thread, user=self.user, seq=self.last_sent if seq is None else seq
            )

    async def disconnect(self, code: int) -> None:
        if getattr(self, "streaming", False):
            await self.mark_read(force=True)
        await super().disconnect(code)


class TeamConsumer(MemberConsumer):
    """`/ws/teams/{id}/`: the live dashboard (threads with unread counts, agents, activity)."""

    membership: Membership
    user: User

    async def connect(self) -> None:
        user = authenticated_user(self.scope)
        if user is None:
            await self.accept()  # accepted first, so the client sees why it is closed
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        try:
            self.membership = await database_sync_to_async(access_team)(
                user=user, team_id=int(self.scope["url_route"]["kwargs"]["team_id"])
            )
        except NotFound:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        # In the group before the client hears it is connected: it misses no update after.
        await self.follow_membership(team_id=self.membership.team_id, user_id=user.pk)
        self.group = events.team_group(self.membership.team_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def team_agent(self, event: dict[str, Any]) -> None:
        await self.send(event["html"])

    async def team_agent_removed(self, event: dict[str, Any]) -> None:
        await self.send(f'<div id="agent-{int(event["agent_id"])}" hx-swap-oob="delete"></div>')

    async def team_activity(self, event: dict[str, Any]) -> None:
        await self.send(event["html"] + await self.render_threads())

    async def team_thread(self, event: dict[str, Any]) -> None:
        await self.send(await self.render_threads())

    @database_sync_to_async
    def render_threads(self) -> str:
        """The thread list with this viewer's unread counts (one query)."""
        threads = list(selectors.thread_list(team=self.membership.team, user=self.user))
        return render_to_string(
            "teams/dashboard.html#thread_list",
            {"threads": threads, "team": self.membership.team, "oob": True},
        )
