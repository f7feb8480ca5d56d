from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from apps.agents.models import Agent
from apps.agents.selectors import active_agents_by_pk
from apps.agents.services import refuse_archived_handles, require_not_archived
from apps.core import sql
from apps.core.errors import Conflict, ServiceError
from apps.core.realtime import broadcast_on_commit, broadcasts_on_commit
from apps.core.registry import dispatcher, event_handlers_registered, publish_event
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import require_role
from apps.threads import events
from apps.threads.deliveries import Addressed, deliveries_inserted, deliveries_new
from apps.threads.mentions import extract_mentions
from apps.threads.models import (
    Delivery,
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
    *, team: Team, name: str, created_by: User | None, topic: str = ""
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
        raise Conflict(f"#{name} already exists in this team.", field="name") from None
    broadcast_on_commit(events.team_group(team.pk), lambda: events.thread_changed_event(thread))
    return thread


def thread_create(*, actor: Membership, name: str, topic: str = "") -> Thread:
    require_role(actor, Role.MEMBER, "Viewers cannot create threads.")
    return thread_create_channel(team=actor.team, name=name, topic=topic, created_by=actor.user)


def thread_direct_get_or_create(*, actor: Membership, agent: Agent) -> Thread:
    """A human opens the direct thread with one of the team's agents."""
    require_role(actor, Role.VIEWER, team_id=agent.team_id)
    existing = Thread.objects.filter(team=actor.team, kind=ThreadKind.DIRECT, agent=agent).first()
    if existing:
        return existing
    require_role(actor, Role.MEMBER, "Viewers cannot start threads.")
    return thread_direct_for_agent(agent=agent, created_by=actor.user)


@transaction.atomic
def thread_direct_for_agent(*, agent: Agent, created_by: User | None = None) -> Thread:
    """The agent's direct thread, opened if it has none (a run started without a thread goes
    there). The caller has checked that the actor may."""
    existing = Thread.objects.filter(
        team_id=agent.team_id, kind=ThreadKind.DIRECT, agent=agent
    ).first()
    if existing:
        return existing
    require_not_archived(agent)
    try:
        with transaction.atomic():
            thread = Thread.objects.create(
                team_id=agent.team_id, kind=ThreadKind.DIRECT, agent=agent,
                name=f"dm-{agent.handle}", created_by=created_by,
            )  # fmt: skip
    except IntegrityError:  # opened at the same moment by someone else
        return Thread.objects.get(team_id=agent.team_id, kind=ThreadKind.DIRECT, agent=agent)
    broadcast_on_commit(
        events.team_group(thread.team_id), lambda: events.thread_changed_event(thread)
    )
    return thread


@dataclass
class NewMessage:
    """One message to append; `recipients` are the agents that get a Delivery for it."""

    body: str
    kind: str = MessageKind.TEXT
    author_user: User | None = None
    author_agent: Agent | None = None
    data: dict[str, Any] = field(default_factory=dict)
    recipients: list[Agent] = field(default_factory=list)
    run_id: int | None = None  # the run that produced it
    hop: int = 0  # agent-to-agent steps that led to it
    parent_run_id: int | None = None  # a delegation: the run its child reports back to
    # Deliveries that need no dispatch (e.g. a result handed straight to a waiting caller).
    delivered: bool = False
    # The members its @mentions name (lowercased username → user id), when the caller has
    # resolved them already; otherwise messages_append looks them up for message.mention.
    mentioned_users: dict[str, int] | None = None


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
    to nobody must fail loudly rather than vanish. So is one to an archived agent's handle.
    """
    return _resolve_mentions(thread=thread, body=body)[0]


def _resolve_mentions(*, thread: Thread, body: str) -> tuple[list[Agent], dict[str, int]]:
    """resolve_recipients' agents, and the members mentioned (lowercased username → id)."""
    handles = extract_mentions(body)
    agents = {
        a.handle: a
        for a in (
            Agent.objects.active().filter(team_id=thread.team_id, handle__in=handles)
            if handles  # no @mention, no lookup: most posts name no one
            else ()
        )
    }
    # Handles come lowercased; usernames keep their case (the composer suggests "@AdaL").
    usernames = _members_named(team_id=thread.team_id, handles=handles)
    unknown = [h for h in handles if h not in agents and h not in usernames]
    if unknown:
        refuse_archived_handles(team_id=thread.team_id, handles=unknown, field="body")
        names = ", ".join(f"@{h}" for h in unknown)
        raise ServiceError(
            f"No agent or member of this team is called {names}.",
            field="body",
            code="unknown_recipient",
        )
    recipients = [agents[h] for h in handles if h in agents]
    if thread.kind == ThreadKind.DIRECT and thread.agent and thread.agent not in recipients:
        recipients.append(thread.agent)
    running = dispatcher().agents_running_in(thread_id=thread.pk)
    known = {a.pk for a in recipients}
    if any(pk not in known for pk in running):
        recipients.extend(active_agents_by_pk(pks=[pk for pk in running if pk not in known]))
    return recipients, usernames


def _members_named(*, team_id: int, handles: Sequence[str]) -> dict[str, int]:
    """The team's members among `handles` (lowercased usernames): handle → user id."""
    if not handles:
        return {}
    return dict(
        get_user_model()
        .objects.filter(memberships__team_id=team_id)
        .annotate(handle=Lower("username"))
        .filter(handle__in=handles)
        .values_list("handle", "pk")
    )


def message_post(
    *, actor: Membership, thread: Thread, body: str, extra_recipients: Sequence[Agent] = ()
) -> Message:
    """A human posts to a thread."""
    require_role(
        actor, Role.MEMBER, "Viewers can read threads but not post.", team_id=thread.team_id
    )
    body = check_body(body)
    if not body.strip():
        raise ServiceError("Write something first.", field="body")
    if thread.agent is not None:
        require_not_archived(thread.agent)  # an archived agent's direct thread is history
    for agent in extra_recipients:
        require_not_archived(agent)
    recipients, mentioned_users = _resolve_mentions(thread=thread, body=body)
    recipients += [
        a for a in extra_recipients if a not in recipients and a.team_id == thread.team_id
    ]
    [message] = messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=body,
                author_user=actor.user,
                recipients=recipients,
                mentioned_users=mentioned_users,
            )
        ],
        read_by=actor.user,
    )
    return message


def _mark_read_posted(*, thread: Thread, user: User, seq: int) -> None:
    """The poster has read up to their own new message: one UPDATE once the row exists (it is
    behind: `seq` is the newest), which only moves forward, so a lower seq never winds it
    back. A viewer's periodic mark (thread_mark_read) reads first instead: usually nothing
    has changed and a write would be wasted."""
    # Plain SQL (apps.core.sql), as messages_append: every human post comes through here.
    if not sql.execute(
        "UPDATE {State} SET {State.last_read_seq} = %s "
        "WHERE {State.thread} = %s AND {State.user} = %s AND {State.last_read_seq} < %s",
        [seq, thread.pk, user.pk, seq],
        State=ThreadReadState,
    ):
        thread_mark_read(thread=thread, user=user, seq=seq)  # no row yet (or already past)


def messages_append(
    *, thread: Thread, items: list[NewMessage], read_by: User | None = None
) -> list[Message]:
    """Append messages with consecutive seqs, and broadcast them once; `read_by`: mark the
    thread read up to them for that user (the poster) too.

    The seq block is taken with an UPDATE on the thread row, whose lock (PostgreSQL) or the
    database write lock (SQLite) orders concurrent writers: seqs commit in increasing order.
    So everything from that UPDATE to the commit holds up the thread's other writers. On
    PostgreSQL it is one statement (the UPDATE, the messages' and deliveries' INSERTs and the
    read mark, chained in a WITH) which, outside a caller's transaction, commits by itself:
    the row stays locked only while PostgreSQL runs it. As separate statements in a
    transaction it stayed locked while the writer waited for its Python thread between them
    (bench/scale.py: two servers posting to one thread, the lock was held ~85 % of the time,
    mostly by transactions idle in Python). What does not need the seq (the team's hop
    limit) is read before it.
    """
    if not items:
        return []
    if Thread.team.is_cached(thread):  # read with the thread in this request already
        hop_limit = thread.team.hop_limit
    else:
        (hop_limit,) = sql.row(
            "SELECT {Team.hop_limit} FROM {Team} WHERE {Team.id} = %s", [thread.team_id], Team=Team
        )
    now = timezone.now()
    messages = [
        Message(
            thread=thread,
            kind=item.kind,
            body=item.body,
            data=item.data,
            author_user=item.author_user,
            author_agent=item.author_agent,
            created_at=now,
            run_id=item.run_id,
            hop=item.hop,
        )
        for item in items
    ]
    addressed = [
        Addressed(
            message=message,
            agent=agent,
            hop=item.hop,
            parent_run_id=item.parent_run_id,
            delivered=item.delivered,
        )
        for message, item in zip(messages, items, strict=True)
        for agent in dict.fromkeys(item.recipients)
    ]
    deliveries = deliveries_new(addressed=addressed, hop_limit=hop_limit)
    if connection.vendor == "postgresql":
        read_marked = _append_in_one_statement(
            thread=thread, messages=messages, deliveries=deliveries, now=now, read_by=read_by
        )
        _appended(thread=thread, messages=messages, deliveries=deliveries, items=items,
                  addressed=addressed)  # fmt: skip
        if read_by is not None and not read_marked:
            # The statement's UPDATE found no mark to move: none yet, or one already past.
            thread_mark_read(thread=thread, user=read_by, seq=messages[-1].seq)
    else:
        # No savepoint inside a caller's transaction: SAVEPOINT and RELEASE were two more
        # round trips with the database locked. No caller catches an error from here and
        # carries on.
        with transaction.atomic(savepoint=False):
            _append_statements(thread=thread, messages=messages, deliveries=deliveries, now=now)
            _appended(thread=thread, messages=messages, deliveries=deliveries, items=items,
                      addressed=addressed)  # fmt: skip
        if read_by is not None:
            # After the append's commit, not inside it: every post to the thread waits for it.
            _mark_read_posted(thread=thread, user=read_by, seq=messages[-1].seq)
    return messages


def _append_statements(
    *, thread: Thread, messages: list[Message], deliveries: list[Delivery], now: datetime
) -> None:
    """The append as separate statements, inside the caller's transaction (SQLite)."""
    # Plain SQL (apps.core.sql): every agent message comes through here.
    (last_seq,) = sql.row(
        "UPDATE {Thread} SET {Thread.last_seq} = {Thread.last_seq} + %s, "
        "{Thread.last_message_at} = %s WHERE {Thread.id} = %s RETURNING {Thread.last_seq}",
        [len(messages), sql.value(Thread, "last_message_at", now), thread.pk],
        Thread=Thread,
    )
    thread.last_seq, thread.last_message_at = last_seq, now
    for i, message in enumerate(messages):
        message.seq = last_seq - len(messages) + 1 + i
    sql.insert(messages)
    for delivery in deliveries:
        delivery.message = delivery.message  # its message_id, now that the message has one
    sql.insert(deliveries)


def _append_in_one_statement(
    *,
    thread: Thread,
    messages: list[Message],
    deliveries: list[Delivery],
    now: datetime,
    read_by: User | None,
) -> bool:
    """The append as one PostgreSQL statement; whether it moved `read_by`'s read mark (False:
    no mark yet, or one already past)."""
    count = len(messages)
    back = {id(message): count - 1 - i for i, message in enumerate(messages)}  # seq = last − back
    m_columns, m_values, m_params = sql.insert_values(
        messages, now=now, computed={"seq": lambda m: ("(SELECT last FROM s) - %s", [back[id(m)]])}
    )
    parts = [
        "WITH s AS (UPDATE {Thread} SET {Thread.last_seq} = {Thread.last_seq} + %s, "
        "{Thread.last_message_at} = %s WHERE {Thread.id} = %s RETURNING {Thread.last_seq} AS last)",
        ", m AS (INSERT INTO {Message} ({m_columns}) VALUES {m_values} "
        "RETURNING {Message.id} AS id, {Message.seq} AS seq)",
    ]
    params: list[Any] = [count, sql.value(Thread, "last_message_at", now), thread.pk, *m_params]
    names: dict[str, Any] = {"m_columns": m_columns, "m_values": m_values}
    selects = ["SELECT 0, id, seq, 0 FROM m"]
    if deliveries:
        d_columns, d_values, d_params = sql.insert_values(
            deliveries,
            now=now,
            computed={
                "message": lambda d: (
                    "(SELECT id FROM m WHERE seq = (SELECT last FROM s) - %s)",
                    [back[id(d.message)]],
                )
            },
        )
        parts.append(
            ", d AS (INSERT INTO {Delivery} ({d_columns}) VALUES {d_values} RETURNING "
            "{Delivery.id} AS id, {Delivery.message} AS message_id, {Delivery.agent} AS agent_id)"
        )
        params += d_params
        names |= {"d_columns": d_columns, "d_values": d_values}
        selects.append("SELECT 1, id, message_id, agent_id FROM d")
    if read_by is not None:
        # Only forward, as thread_mark_read: a mark further on is not wound back.
        parts.append(
            ", r AS (UPDATE {State} SET {State.last_read_seq} = (SELECT last FROM s) "
            "WHERE {State.thread} = %s AND {State.user} = %s "
            "AND {State.last_read_seq} < (SELECT last FROM s) RETURNING 1)"
        )
        params += [thread.pk, read_by.pk]
        selects.append("SELECT 2, 0, 0, 0 FROM r")
    found = sql.rows(
        " ".join(parts) + " " + " UNION ALL ".join(selects),
        params,
        Thread=Thread,
        Message=Message,
        Delivery=Delivery,
        State=ThreadReadState,
        **names,
    )
    by_seq = {seq: pk for kind, pk, seq, _ in found if kind == 0}
    if len(by_seq) != count:
        raise RuntimeError(f"appended {len(by_seq)} of {count} messages to thread {thread.pk}")
    last_seq = max(by_seq)
    thread.last_seq, thread.last_message_at = last_seq, now
    for message in messages:
        message.seq = last_seq - back[id(message)]
    sql.inserted(messages, [by_seq[m.seq] for m in messages])
    by_key = {(message_id, agent_id): pk for kind, pk, message_id, agent_id in found if kind == 1}
    for delivery in deliveries:
        delivery.message = delivery.message  # its message_id, now that the message has one
    sql.inserted(deliveries, [by_key[(d.message_id, d.agent_id)] for d in deliveries])
    return any(kind == 2 for kind, *_ in found)


def _appended(
    *,
    thread: Thread,
    messages: list[Message],
    deliveries: list[Delivery],
    items: list[NewMessage],
    addressed: list[Addressed],
) -> None:
    """What follows the append: the dispatch and the broadcasts, once it has committed."""
    for message in messages:
        message.thread = thread
    # Before the broadcasts: on commit, a running recipient is handed its message first.
    deliveries_inserted(rows=deliveries, addressed=addressed)
    by_message: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_message.setdefault(delivery.message_id, []).append(delivery)
    for message in messages:
        message.delivery_list = by_message.get(message.pk, [])  # type: ignore[attr-defined]
    broadcasts_on_commit(
        [
            (
                events.thread_group(thread.pk),
                lambda: events.messages_event(messages, events.json_item),
            ),
            (
                events.thread_html_group(thread.pk),
                lambda: events.messages_event(messages, events.html_item),
            ),
            (
                events.team_group(thread.team_id),
                lambda: events.thread_activity_event(thread, messages),
            ),
        ]
    )
    if event_handlers_registered():
        _publish_mentions(thread=thread, messages=messages, items=items)


MENTION_EXCERPT_CHARS = 300


@functools.lru_cache(maxsize=4096)
def _thread_path(thread_id: int, prefix: str, urlconf: str | None) -> str:
    """The thread page's path (reverse() costs ~0.1 ms; every mention asks), for the current
    script prefix and URLconf."""
    return reverse("thread", args=[thread_id])


def _publish_mentions(*, thread: Thread, messages: list[Message], items: list[NewMessage]) -> None:
    """message.mention (notifications, webhooks) for each text message that @mentions a member
    or one of the agents it addresses. No query unless a mention may name a member whom the
    caller has not resolved: then one for the whole batch."""
    found = []
    for message, item in zip(messages, items, strict=True):
        # The substring test first: most agent output mentions no one.
        is_candidate = item.kind == MessageKind.TEXT and "@" in item.body
        handles = extract_mentions(item.body) if is_candidate else []
        if handles:
            found.append((message, item, handles))
    if not found:
        return
    unresolved = {
        h
        for _, item, handles in found
        if item.mentioned_users is None
        for h in handles
        if h not in {a.handle for a in item.recipients}
    }
    members = _members_named(team_id=thread.team_id, handles=sorted(unresolved))
    for message, item, handles in found:
        users = item.mentioned_users if item.mentioned_users is not None else members
        addressed = {a.handle for a in item.recipients}
        own = item.author_agent.handle if item.author_agent else None
        if item.author_user is not None:
            own = item.author_user.username.lower()
        agents = [h for h in handles if h in addressed and h != own]
        humans = [h for h in handles if h in users and h not in addressed and h != own]
        if not agents and not humans:
            continue
        publish_event(
            "message.mention",
            team_id=thread.team_id,
            data={
                "message": message.pk,
                "thread": thread.pk,
                "thread_name": thread.name,
                "author": (
                    f"@{item.author_agent.handle}"
                    if item.author_agent
                    else item.author_user.username
                    if item.author_user
                    else "ozweb"
                ),
                "author_user": item.author_user.pk if item.author_user else None,
                "mentions": agents + humans,
                "agents": agents,
                "users": [users[h] for h in humans],
                "excerpt": item.body[:MENTION_EXCERPT_CHARS],
                "url": _thread_path(thread.pk, get_script_prefix(), get_urlconf())
                + f"#msg-{message.pk}",
            },
        )


def thread_mark_read(*, thread: Thread, user: User, seq: int | None = None) -> None:
    if seq is None:
        seq = Thread.objects.filter(pk=thread.pk).values_list("last_seq", flat=True).get()
    # Plain SQL (apps.core.sql): every live viewer marks what it has seen every few seconds
    # and on leaving. A read first: usually there is a row and often nothing to move.
    found = sql.row(
        "SELECT {State.id}, {State.last_read_seq} FROM {State} "
        "WHERE {State.thread} = %s AND {State.user} = %s",
        [thread.pk, user.pk],
        State=ThreadReadState,
    )
    if found is None:
        state, created = ThreadReadState.objects.get_or_create(
            thread=thread, user=user, defaults={"last_read_seq": seq}
        )
        if created:
            return
        found = (state.pk, state.last_read_seq)
    state_id, last_read_seq = found
    if last_read_seq < seq:
        # Only forward: a concurrent mark further on is not wound back.
        sql.execute(
            "UPDATE {State} SET {State.last_read_seq} = %s "
            "WHERE {State.id} = %s AND {State.last_read_seq} < %s",
            [seq, state_id, seq],
            State=ThreadReadState,
        )
