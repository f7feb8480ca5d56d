from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest, Lower
from django.utils import timezone

from apps.agents.models import Agent
from apps.core import sql
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.realtime import broadcast_on_commit
from apps.teams.models import Membership, Role, Team
from apps.threads import events
from apps.threads.mentions import extract_mentions
from apps.threads.models import (
    Delivery,
    DeliveryState,
    Message,
    MessageKind,
    Thread,
    ThreadKind,
    ThreadReadState,
)

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def _max_body_bytes() -> int:
    from django.conf import settings

    return settings.OZWEB_MAX_MESSAGE_BYTES


@transaction.atomic
def thread_create_channel(
    *, team: Team, name: str, created_by: AbstractBaseUser | None, topic: str = ""
) -> Thread:
    name = name.strip().lstrip("#").lower().replace(" ", "-")
    if not CHANNEL_NAME_RE.match(name):
        raise ServiceError(
            "A channel name is 1–80 lowercase letters, digits, - or _.", field="name"
        )
    if name.startswith("dm-"):
        raise ServiceError("Names starting with dm- are kept for direct threads.", field="name")
    try:
        with transaction.atomic():
            thread = Thread.objects.create(
                team=team, kind=ThreadKind.CHANNEL, name=name, topic=topic.strip()[:250],
                created_by=created_by,
            )  # fmt: skip
    except IntegrityError:
        raise ServiceError(f"#{name} already exists in this team.", field="name") from None
    broadcast_on_commit(events.team_group(team.pk), lambda: events.thread_changed_event(thread))
    return thread


def thread_create(*, actor: Membership, name: str, topic: str = "") -> Thread:
    if not actor.has_role(Role.MEMBER):
        raise PermissionDenied("Viewers cannot create threads.")
    return thread_create_channel(team=actor.team, name=name, topic=topic, created_by=actor.user)


@transaction.atomic
def thread_direct_get_or_create(*, actor: Membership, agent: Agent) -> Thread:
    if agent.team_id != actor.team_id:
        raise PermissionDenied()
    existing = Thread.objects.filter(team=actor.team, kind=ThreadKind.DIRECT, agent=agent).first()
    if existing:
        return existing
    if not actor.has_role(Role.MEMBER):
        raise PermissionDenied("Viewers cannot start threads.")
    try:
        with transaction.atomic():
            thread = Thread.objects.create(
                team=actor.team, kind=ThreadKind.DIRECT, agent=agent, name=f"dm-{agent.handle}",
                created_by=actor.user,
            )  # fmt: skip
    except IntegrityError:  # opened at the same moment by someone else
        return Thread.objects.get(team=actor.team, kind=ThreadKind.DIRECT, agent=agent)
    broadcast_on_commit(
        events.team_group(thread.team_id), lambda: events.thread_changed_event(thread)
    )
    return thread


@dataclass
class NewMessage:
    """One message to append; `recipients` are the agents that get a Delivery for it."""

    body: str
    kind: str = MessageKind.TEXT
    author_user: AbstractBaseUser | None = None
    author_agent: Agent | None = None
    data: dict[str, Any] = field(default_factory=dict)
    recipients: list[Agent] = field(default_factory=list)
    run: Any = None  # the runs.Run that produced it
    hop: int = 0  # agent-to-agent steps that led to it
    parent_run: Any = None  # set on a delegation: the runs.Run its child reports back to
    # Deliveries that need no dispatch (e.g. a result handed straight to a waiting caller).
    delivered: bool = False


def check_body(body: str) -> str:
    if not isinstance(body, str):
        raise ServiceError("The message body must be text.", field="body")
    if "\x00" in body:
        raise ServiceError("The message contains a NUL character.", field="body")
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise ServiceError("The message is not valid Unicode text.", field="body") from None
    if size > _max_body_bytes():
        raise ServiceError(
            f"The message is {size:,} bytes; the limit is {_max_body_bytes():,} bytes. "
            "Put long content in an artifact or split it.",
            field="body",
            code="too_large",
        )
    return body


def resolve_recipients(*, thread: Thread, body: str) -> list[Agent]:
    """The agents a human's message addresses: its @mentions, a direct thread's agent, and
    any agent with a live run in the thread (a reply there steers it).

    A mention that names neither an agent nor a member of the team is refused: a message
    to nobody must fail loudly rather than vanish.
    """
    handles = extract_mentions(body)
    agents = {a.handle: a for a in Agent.objects.filter(team_id=thread.team_id, handle__in=handles)}
    # Handles come lowercased; usernames keep their case (the composer suggests "@AdaL").
    usernames = set(
        get_user_model()
        .objects.filter(memberships__team_id=thread.team_id)
        .annotate(handle=Lower("username"))
        .filter(handle__in=handles)
        .values_list("handle", flat=True)
    )
    unknown = [h for h in handles if h not in agents and h not in usernames]
    if unknown:
        names = ", ".join(f"@{h}" for h in unknown)
        raise ServiceError(
            f"No agent or member of this team is called {names}.",
            field="body",
            code="unknown_recipient",
        )
    recipients = [agents[h] for h in handles if h in agents]
    if thread.kind == ThreadKind.DIRECT and thread.agent and thread.agent not in recipients:
        recipients.append(thread.agent)
    from apps.runs.models import Run

    running = Agent.objects.filter(
        pk__in=Run.objects.filter(thread=thread).active().values("agent_id")
    ).exclude(pk__in=[a.pk for a in recipients])
    recipients.extend(running)
    return recipients


def message_post(
    *, actor: Membership, thread: Thread, body: str, extra_recipients: list[Agent] = ()
) -> Message:
    """A human posts to a thread."""
    if thread.team_id != actor.team_id:
        raise PermissionDenied()
    if not actor.has_role(Role.MEMBER):
        raise PermissionDenied("Viewers can read threads but not post.")
    body = check_body(body)
    if not body.strip():
        raise ServiceError("Write something first.", field="body")
    recipients = resolve_recipients(thread=thread, body=body)
    recipients += [
        a for a in extra_recipients if a not in recipients and a.team_id == thread.team_id
    ]
    with transaction.atomic():
        [message] = messages_append(
            thread=thread,
            items=[NewMessage(body=body, author_user=actor.user, recipients=recipients)],
        )
        thread_mark_read(thread=thread, user=actor.user, seq=message.seq)
    return message


@transaction.atomic
def messages_append(*, thread: Thread, items: list[NewMessage]) -> list[Message]:
    """Append messages in one transaction with consecutive seqs, and broadcast them once.

    The seq block is taken with an UPDATE on the thread row, whose lock (PostgreSQL) or the
    database write lock (SQLite) orders concurrent writers: seqs commit in increasing order.
    """
    if not items:
        return []
    now = timezone.now()
    # Plain SQL (apps.core.sql): every agent message comes through here.
    (last_seq,) = sql.row(
        "UPDATE {Thread} SET {Thread.last_seq} = {Thread.last_seq} + %s, "
        "{Thread.last_message_at} = %s WHERE {Thread.id} = %s RETURNING {Thread.last_seq}",
        [len(items), sql.value(Thread, "last_message_at", now), thread.pk],
        Thread=Thread,
    )
    thread.last_seq, thread.last_message_at = last_seq, now
    first = last_seq - len(items) + 1
    messages = sql.insert(
        [
            Message(
                thread=thread,
                seq=first + i,
                kind=item.kind,
                body=item.body,
                data=item.data,
                author_user=item.author_user,
                author_agent=item.author_agent,
                created_at=now,
                run=item.run,
                hop=item.hop,
            )
            for i, item in enumerate(items)
        ]
    )
    (hop_limit,) = sql.row(
        "SELECT {Team.hop_limit} FROM {Team} WHERE {Team.id} = %s", [thread.team_id], Team=Team
    )
    deliveries = sql.insert(
        [
            _delivery_for(message, item, agent, hop_limit)
            for message, item in zip(messages, items, strict=True)
            for agent in dict.fromkeys(item.recipients)
        ]
    )
    by_message: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_message.setdefault(delivery.message_id, []).append(delivery)
    for message in messages:
        message.thread = thread
        message.delivery_list = by_message.get(message.pk, [])  # type: ignore[attr-defined]
    waiting = [d for d in deliveries if d.state == DeliveryState.PENDING and not d.held]
    if waiting:
        _hand_over_on_commit(thread, waiting)
    broadcast_on_commit(
        events.thread_group(thread.pk), lambda: events.messages_event(messages, events.json_item)
    )
    broadcast_on_commit(
        events.thread_html_group(thread.pk),
        lambda: events.messages_event(messages, events.html_item),
    )
    broadcast_on_commit(
        events.team_group(thread.team_id), lambda: events.thread_activity_event(thread, messages)
    )
    return messages


def _hand_over_on_commit(thread: Thread, deliveries: list[Delivery]) -> None:
    """After commit, get each message to its agent: a recipient with a live run in this thread
    is woken and handed its deliveries (one indexed query here, no lookup by the executor);
    any other is dispatched, which may start a run."""
    from apps.runs import wakeup
    from apps.runs.models import ACTIVE_STATUSES, Run
    from apps.runs.services import deliveries_dispatch_on_commit

    plain = {d.agent_id for d in deliveries if d.parent_run_id is None}
    live = dict(
        sql.rows(
            "SELECT {Run.agent}, {Run.id} FROM {Run} WHERE {Run.thread} = %s "
            "AND {Run.agent} IN ({agents}) AND {Run.status} IN ({active}) ORDER BY {Run.id}",
            [thread.pk, *plain, *ACTIVE_STATUSES],
            Run=Run,
            agents=sql.markers(plain),
            active=sql.markers(ACTIVE_STATUSES),
        )
        if plain
        else []
    )
    for agent_id, run_id in live.items():
        handed = [d for d in deliveries if d.agent_id == agent_id and d.parent_run_id is None]
        transaction.on_commit(lambda run_id=run_id, handed=handed: wakeup.wake_run(run_id, handed))
    deliveries_dispatch_on_commit(
        d.agent_id for d in deliveries if d.parent_run_id is not None or d.agent_id not in live
    )


def _delivery_for(message: Message, item: NewMessage, agent: Agent, hop_limit: int) -> Delivery:
    if item.delivered:
        return Delivery(
            message=message, agent=agent, state=DeliveryState.DELIVERED, parent_run=item.parent_run
        )
    held = item.hop > hop_limit
    return Delivery(
        message=message,
        agent=agent,
        parent_run=item.parent_run,
        held=held,
        reason=(
            f"Held: {item.hop} agent-to-agent steps is past this team's limit of {hop_limit}. "
            "A human must release it."
            if held
            else ""
        ),
    )


def broadcast_delivery(delivery: Delivery) -> None:
    """A delivery changed state: tell the thread's API clients and browsers."""
    thread_id = delivery.message.thread_id
    for group in (events.thread_group(thread_id), events.thread_html_group(thread_id)):
        broadcast_on_commit(group, lambda: events.delivery_changed_event(delivery))


def delivery_release(*, actor: Membership, delivery: Delivery) -> Delivery:
    """A human lets a held message through to its agent."""
    if delivery.agent.team_id != actor.team_id:
        raise PermissionDenied()
    if not actor.has_role(Role.MEMBER):
        raise PermissionDenied("Viewers cannot release messages.")
    with transaction.atomic():
        # Guarded: of two people releasing at once, one releases and the other is told.
        released = Delivery.objects.filter(pk=delivery.pk, held=True).update(
            held=False, reason="Released by a human.", updated_at=timezone.now()
        )
        if not released:
            raise ServiceError("This message is not held.", code="not_held")
        delivery.held, delivery.reason = False, "Released by a human."
        broadcast_delivery(delivery)
        from apps.runs.services import deliveries_dispatch_on_commit

        deliveries_dispatch_on_commit([delivery.agent_id])
    return delivery


def thread_mark_read(*, thread: Thread, user: AbstractBaseUser, seq: int | None = None) -> None:
    if seq is None:
        seq = Thread.objects.filter(pk=thread.pk).values_list("last_seq", flat=True).get()
    state, created = ThreadReadState.objects.get_or_create(
        thread=thread, user=user, defaults={"last_read_seq": seq}
    )
    if not created and state.last_read_seq < seq:
        ThreadReadState.objects.filter(pk=state.pk).update(
            last_read_seq=Greatest(F("last_read_seq"), seq)
        )
