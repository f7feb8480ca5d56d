"""Deliveries: one message to one agent, and its state machine. This module is its one owner.

    pending ──take/claim──▶ delivered ──read_inbox──▶ read ──ack──▶ acked
       │  ▲                     │
       │  └──give back──────────┘   (the run that took it could not hand it to its process)
       └──start failed N times──▶ failed      held: past the hop limit, until a human releases it

A delivery is created with its message (`deliveries_create`, called by messages_append); who
it goes to and when is the dispatcher's business (apps/core/registry.py, implemented by the
runs app): it may hand it to a live run in memory, or start a run with it. Runs are named by id
here: this layer sits below runs and does not import them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from apps.agents.models import Agent
from apps.core import sql
from apps.core.errors import Conflict
from apps.core.prepared import PreparedQuery
from apps.core.realtime import broadcast_on_commit
from apps.core.registry import dispatcher
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads import events
from apps.threads.models import Delivery, DeliveryState, Message

START_RETRY_LIMIT = 2
START_RETRY_BACKOFF_SECONDS = (2, 10)
REASON_MAX = 500


class RunLike(Protocol):
    pk: int
    agent_id: int
    thread_id: int | None


@dataclass(frozen=True)
class RunSlot:
    """The run a delivery goes to: its id, and the agent and thread it serves."""

    run_id: int
    agent_id: int
    thread_id: int | None

    @classmethod
    def of(cls, run: RunLike) -> RunSlot:
        return cls(run_id=run.pk, agent_id=run.agent_id, thread_id=run.thread_id)


@dataclass(frozen=True)
class Addressed:
    """One recipient of one new message, as messages_append asks for it."""

    message: Message
    agent: Agent  # an instance: the broadcasts read its handle without a query
    hop: int
    parent_run_id: int | None = None
    # Needs no dispatch: e.g. a result handed straight to a `delegate` call waiting for it.
    delivered: bool = False


def deliveries_create(*, addressed: Sequence[Addressed], hop_limit: int) -> list[Delivery]:
    """Insert the deliveries of new messages (inside the caller's transaction) and, once it
    commits, have the dispatcher hand the waiting ones to their agents."""
    rows = sql.insert(deliveries_new(addressed=addressed, hop_limit=hop_limit))
    deliveries_inserted(rows=rows, addressed=addressed)
    return rows


def deliveries_new(*, addressed: Sequence[Addressed], hop_limit: int) -> list[Delivery]:
    """The unsaved deliveries of new messages, for a caller that inserts them itself (in one
    statement with their messages: messages_append on PostgreSQL); then deliveries_inserted."""
    return [_new_delivery(item, hop_limit) for item in addressed]


def deliveries_inserted(*, rows: Sequence[Delivery], addressed: Sequence[Addressed]) -> None:
    """Deliveries just inserted: once the transaction commits (at once in autocommit), the
    dispatcher hands the waiting ones to their agents."""
    by_thread: dict[int, list[Delivery]] = {}
    for delivery, item in zip(rows, addressed, strict=True):
        if delivery.state == DeliveryState.PENDING and not delivery.held:
            by_thread.setdefault(item.message.thread_id, []).append(delivery)
    for thread_id, waiting in by_thread.items():
        dispatcher().deliveries_ready_on_commit(thread_id=thread_id, deliveries=waiting)


def _new_delivery(item: Addressed, hop_limit: int) -> Delivery:
    if item.delivered:
        return Delivery(
            message=item.message,
            agent=item.agent,
            state=DeliveryState.DELIVERED,
            parent_run_id=item.parent_run_id,
        )
    held = item.hop > hop_limit
    return Delivery(
        message=item.message,
        agent=item.agent,
        parent_run_id=item.parent_run_id,
        held=held,
        reason=(
            f"Held: {item.hop} agent-to-agent steps is past this team's limit of {hop_limit}. "
            "A human must release it."
            if held
            else ""
        ),
    )


def broadcast_delivery(delivery: Delivery) -> None:
    """A delivery changed state: tell the thread's API clients and browsers (on commit)."""
    thread_id = delivery.message.thread_id
    for group in (events.thread_group(thread_id), events.thread_html_group(thread_id)):
        broadcast_on_commit(group, lambda: events.delivery_changed_event(delivery))


def delivery_release(*, actor: Membership, delivery: Delivery) -> Delivery:
    """A human lets a held message through to its agent."""
    require_role(
        actor, Role.MEMBER, "Viewers cannot release messages.", team_id=delivery.agent.team_id
    )
    with transaction.atomic():
        # Guarded: of two people releasing at once, one releases and the other is told.
        released = Delivery.objects.filter(pk=delivery.pk, held=True).update(
            held=False, reason="Released by a human.", updated_at=timezone.now()
        )
        if not released:
            raise Conflict("This message is not held.", code="not_held")
        delivery.held, delivery.reason = False, "Released by a human."
        broadcast_delivery(delivery)
        dispatcher().agents_dispatch_on_commit([delivery.agent_id])
    return delivery


def deliveries_assign(*, deliveries: Iterable[Delivery], run_id: int) -> None:
    """A new run was created for these waiting deliveries: they are its prompt."""
    ids = [d.pk for d in deliveries]
    if ids:
        Delivery.objects.filter(pk__in=ids).update(run_id=run_id, updated_at=timezone.now())


def deliveries_take_prompt(*, slot: RunSlot) -> list[Delivery]:
    """The deliveries the run was created with (their text is its prompt), marked delivered.
    Messages that arrived since are not among them: the run takes those as input."""
    with transaction.atomic():
        taken = list(
            Delivery.objects.select_for_update(of=("self",))
            .waiting()
            .filter(run_id=slot.run_id)
            .select_related("agent", "message")
            .order_by("id")
        )
        deliveries_set_state(deliveries=taken, state=DeliveryState.DELIVERED, run_id=slot.run_id)
    return taken


# A running agent takes its waiting messages through these whenever it is woken from another
# process (bench/messaging.py --mode scaled: once per message), so they are compiled once.
_waiting_for_run: PreparedQuery[int] = PreparedQuery(
    lambda agent_id, thread_id, run_id: Delivery.objects.for_run_of(
        agent_id=agent_id, thread_id=thread_id, run_id=run_id
    ).values_list("id", flat=True)[:1],
    agent_id=int,
    thread_id=int,
    run_id=int,
)
_take_for_run: PreparedQuery[Delivery] = PreparedQuery(
    lambda agent_id, thread_id, run_id: (
        Delivery.objects.for_run_of(agent_id=agent_id, thread_id=thread_id, run_id=run_id)
        .select_for_update(of=("self",))
        .select_related("agent", "message__thread", "message__author_user", "message__author_agent")
        .order_by("id")
    ),
    agent_id=int,
    thread_id=int,
    run_id=int,
)


def deliveries_take(*, slot: RunSlot, known_waiting: bool = False) -> list[Delivery]:
    """Waiting messages for the run's agent in its thread, marked delivered to this run.
    `known_waiting`: the caller has just seen some (run_control_look), so do not look again."""
    if slot.thread_id is None:
        return []
    keys = {"agent_id": slot.agent_id, "thread_id": slot.thread_id, "run_id": slot.run_id}
    # Executors call this at their start and after each turn; a plain read first keeps them
    # from taking the write lock (SQLite takes it at BEGIN) when there is nothing to take.
    if not known_waiting and not _waiting_for_run(**keys):
        return []
    with transaction.atomic():
        taken = _take_for_run(**keys)
        deliveries_set_state(deliveries=taken, state=DeliveryState.DELIVERED, run_id=slot.run_id)
    return taken


def deliveries_claim(*, slot: RunSlot, deliveries: Iterable[Delivery]) -> list[Delivery]:
    """Of these deliveries (handed over in memory by the sender, message loaded), those that
    were still pending for the run's agent in its thread, now delivered to the run. Each is
    claimed by a guarded UPDATE, so a concurrent `deliveries_take` never delivers one twice."""
    claimed: list[Delivery] = []
    now = timezone.now()
    with transaction.atomic():
        for delivery in deliveries:
            if (
                delivery.agent_id != slot.agent_id
                or delivery.message.thread_id != slot.thread_id
                or delivery.parent_run_id is not None
            ):
                continue
            # Plain SQL (apps.core.sql): every agent message to a running agent comes here.
            won = sql.execute(
                "UPDATE {Delivery} SET {Delivery.state} = %s, {Delivery.run} = %s, "
                "{Delivery.reason} = '', {Delivery.updated_at} = %s WHERE {Delivery.id} = %s "
                "AND {Delivery.state} = %s AND {Delivery.held} = %s AND {Delivery.run} IS NULL",
                [
                    DeliveryState.DELIVERED,
                    slot.run_id,
                    sql.value(Delivery, "updated_at", now),
                    delivery.pk,
                    DeliveryState.PENDING,
                    False,
                ],
                Delivery=Delivery,
            )
            if won:
                delivery.state, delivery.run_id, delivery.reason = (
                    DeliveryState.DELIVERED,
                    slot.run_id,
                    "",
                )
                delivery.updated_at = now
                broadcast_delivery(delivery)
                claimed.append(delivery)
    return claimed


def deliveries_set_state(
    *,
    deliveries: Sequence[Delivery],
    state: DeliveryState,
    run_id: int | None = None,
    reason: str = "",
) -> None:
    if not deliveries:
        return
    fields: dict[str, Any] = {
        "state": state,
        "reason": reason[:REASON_MAX],
        "updated_at": timezone.now(),
    }
    if run_id is not None:
        fields["run_id"] = run_id
    # Plain SQL (apps.core.sql): a running agent takes every message it is sent through here.
    sql.execute(
        "UPDATE {Delivery} SET {assignments} WHERE {Delivery.id} IN ({ids})",
        [sql.value(Delivery, name, v) for name, v in fields.items()] + [d.pk for d in deliveries],
        Delivery=Delivery,
        assignments=sql.assignments(Delivery, list(fields)),
        ids=sql.markers(deliveries),
    )
    for delivery in deliveries:
        for name, value in fields.items():
            setattr(delivery, name, value)
        broadcast_delivery(delivery)


def deliveries_give_back(*, deliveries: Sequence[Delivery], reason: str) -> None:
    """Deliveries a run took but could not hand its process (it had ended): pending again and
    no longer the run's, so the dispatch at its end, or the reconciler, gets them to the
    agent."""
    if not deliveries:
        return
    now = timezone.now()
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        state=DeliveryState.PENDING, run_id=None, reason=reason[:REASON_MAX], updated_at=now
    )
    for delivery in deliveries:
        delivery.state, delivery.run_id = DeliveryState.PENDING, None
        delivery.reason, delivery.updated_at = reason[:REASON_MAX], now
        broadcast_delivery(delivery)


def deliveries_settle_ended_run(*, run_id: int, stopped: bool, handle: str) -> None:
    """A run ended while messages it was created with were still waiting for it (it never got
    to take them: its worker died, or it was stopped while queued). None may wait for nothing:
    after a stop they fail visibly (the human said stop); otherwise they go back to the agent."""
    with transaction.atomic():
        left = list(
            Delivery.objects.select_for_update(of=("self",))
            .waiting()
            .filter(run_id=run_id)
            .select_related("message")
        )
        if not left:
            return
        if stopped:
            deliveries_set_state(
                deliveries=left,
                state=DeliveryState.FAILED,
                reason=f"@{handle}'s run {run_id} was stopped before it took this message.",
            )
        else:
            deliveries_give_back(
                deliveries=left, reason=f"Run {run_id} ended before it took this message."
            )


def deliveries_fail_for_agent(*, agent_id: int, reason: str) -> None:
    """The agent will never take its waiting messages (it was archived): they fail, visibly,
    held ones too. Those already delivered to a run stay as they are."""
    with transaction.atomic():
        left = list(
            Delivery.objects.select_for_update(of=("self",))
            .filter(agent_id=agent_id, state=DeliveryState.PENDING)
            .select_related("message")
        )
        Delivery.objects.filter(pk__in=[d.pk for d in left], held=True).update(held=False)
        for delivery in left:
            delivery.held = False  # nothing left to release
        deliveries_set_state(deliveries=left, state=DeliveryState.FAILED, reason=reason)


def deliveries_release_failed_start(*, run_id: int, handle: str, reason: str) -> None:
    """A run that never started gives its messages back: retried with backoff, then failed."""
    with transaction.atomic():
        for delivery in (
            Delivery.objects.select_for_update(of=("self",))
            .filter(run_id=run_id, state__in=[DeliveryState.PENDING, DeliveryState.DELIVERED])
            .select_related("message")
        ):
            delivery.attempts += 1
            if delivery.attempts >= START_RETRY_LIMIT:
                deliveries_set_state(
                    deliveries=[delivery],
                    state=DeliveryState.FAILED,
                    reason=f"@{handle} could not start after {delivery.attempts} attempts: "
                    f"{reason}",
                )
                Delivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts)
            else:
                backoff = START_RETRY_BACKOFF_SECONDS[
                    min(delivery.attempts - 1, len(START_RETRY_BACKOFF_SECONDS) - 1)
                ]
                Delivery.objects.filter(pk=delivery.pk).update(
                    attempts=delivery.attempts,
                    state=DeliveryState.PENDING,
                    run_id=None,
                    retry_at=timezone.now() + timedelta(seconds=backoff),
                    reason=f"start failed ({reason[:200]}); retrying in {backoff} s",
                )
