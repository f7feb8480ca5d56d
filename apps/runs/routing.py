"""Delivery routing: getting each message to its agent, by a live run or a new one.

The threads layer creates deliveries and asks the registered dispatcher (apps/core/registry.py)
to route them; `RunDispatcher` below is that dispatcher. A recipient with a live run in the
message's thread is woken and handed its deliveries in memory; any other is dispatched, which
starts a run that resumes its harness session with the messages as its prompt.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.agents.models import Agent, AgentStatus
from apps.core import sql
from apps.core.prepared import PreparedQuery
from apps.runs import wakeup
from apps.runs.archiving import archived_reason
from apps.runs.creation import NewRun, run_create
from apps.runs.models import ACTIVE_STATUSES, Run
from apps.runs.prompts import prompt_from_deliveries
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.deliveries import deliveries_fail_for_agent
from apps.threads.models import Delivery, Message
from apps.threads.services import message_post, thread_direct_for_agent

logger = logging.getLogger(__name__)


def _has_capacity(agent: Agent) -> bool:
    return Run.objects.filter(agent=agent).active().count() < agent.max_concurrent_runs


def deliveries_dispatch(*, agent_id: int) -> list[Run]:
    """Hand an agent its waiting messages: to its live run in that thread (which takes them
    mid-run or as its next turn), or by waking it with a new run that resumes its session."""
    created: list[Run] = []
    with transaction.atomic():
        # Dispatches of one agent take turns. NO KEY UPDATE, not UPDATE: new deliveries to
        # the agent (their foreign key takes KEY SHARE on its row) must not wait for this
        # lock, or a sender holding its thread's row and this dispatch posting to that
        # thread deadlock (PostgreSQL).
        agent = Agent.objects.select_for_update(no_key=True).filter(pk=agent_id).first()
        if agent is None or agent.status == AgentStatus.DISABLED:
            return created
        if agent.is_archived:  # never woken; what reached it meanwhile fails, visibly
            deliveries_fail_for_agent(agent_id=agent.pk, reason=archived_reason(agent))
            return created
        pending = list(
            Delivery.objects.dispatchable(now=timezone.now())
            .filter(agent=agent)
            .select_related("message__thread", "message__author_user", "message__author_agent")
            .order_by("id")
        )
        by_thread: dict[int, list[Delivery]] = {}
        for delivery in pending:
            if delivery.parent_run_id is not None:
                continue  # a delegation gets a run of its own, below
            by_thread.setdefault(delivery.message.thread_id, []).append(delivery)
        for delegation in (d for d in pending if d.parent_run_id is not None):
            if not _has_capacity(agent):
                break  # dispatched again when one of its runs finishes
            created.append(
                run_create(
                    NewRun(
                        agent=agent,
                        thread=delegation.message.thread,
                        prompt=delegation.message.data.get("goal") or delegation.message.body,
                        parent=delegation.parent_run,
                        deliveries=[delegation],
                        hop=delegation.message.hop,
                    )
                )
            )
        for thread_deliveries in by_thread.values():
            thread = thread_deliveries[0].message.thread
            live = Run.objects.filter(agent=agent, thread=thread).active().order_by("id").first()
            if live is not None:
                wakeup.wake_run(live.pk)  # it takes them itself
                continue
            if not _has_capacity(agent):
                continue  # dispatched again when one of its runs finishes
            created.append(
                run_create(
                    NewRun(
                        agent=agent,
                        thread=thread,
                        prompt=prompt_from_deliveries(thread_deliveries),
                        deliveries=thread_deliveries,
                        hop=max(d.message.hop for d in thread_deliveries),
                        # The human whose message woke the agent started the run (their
                        # inbox hears when it ends).
                        created_by=next(
                            (
                                d.message.author_user
                                for d in thread_deliveries
                                if d.message.author_user_id
                            ),
                            None,
                        ),
                    )
                )
            )
    return created


def _dispatch_safely(agent_id: int) -> None:
    try:
        deliveries_dispatch(agent_id=agent_id)
    except Exception:
        # The deliveries stay pending in the database; the reconciler dispatches them again.
        logger.exception("dispatching deliveries for agent %s failed", agent_id)


def run_send_message(*, actor: Membership, run: Run, body: str) -> Message:
    """A human steers a run or follows up on it: a message in its thread addressed to it."""
    require_role(actor, Role.VIEWER, team_id=run.team_id)  # message_post checks the rest
    thread = run.thread or thread_direct_for_agent(agent=run.agent)
    return message_post(actor=actor, thread=thread, body=body, extra_recipients=[run.agent])


# Every post asks (apps.core.prepared: compiled once).
_agents_running_in: PreparedQuery[int] = PreparedQuery(
    lambda thread_id: (
        Run.objects.filter(thread_id=thread_id)
        .active()
        .values_list("agent_id", flat=True)
        .order_by()  # the default ordering's column would defeat the DISTINCT
        .distinct()
    ),
    thread_id=int,
)


class RunDispatcher:
    """apps.core.registry.Dispatcher, for the threads layer (registered by RunsConfig)."""

    def agents_running_in(self, *, thread_id: int) -> list[int]:
        return _agents_running_in(thread_id=thread_id)

    def deliveries_ready_on_commit(self, *, thread_id: int, deliveries: Sequence[Any]) -> None:
        """A recipient with a live run in this thread is woken and handed its deliveries (one
        indexed query here, no lookup by the executor); any other is dispatched."""
        plain = {d.agent_id for d in deliveries if d.parent_run_id is None}
        # Plain SQL (apps.core.sql): every agent message comes through here.
        live = dict(
            sql.rows(
                "SELECT {Run.agent}, {Run.id} FROM {Run} WHERE {Run.thread} = %s "
                "AND {Run.agent} IN ({agents}) AND {Run.status} IN ({active}) ORDER BY {Run.id}",
                [thread_id, *plain, *ACTIVE_STATUSES],
                Run=Run,
                agents=sql.markers(plain),
                active=sql.markers(ACTIVE_STATUSES),
            )
            if plain
            else []
        )
        for agent_id, run_id in live.items():
            handed = [d for d in deliveries if d.agent_id == agent_id and d.parent_run_id is None]
            transaction.on_commit(functools.partial(wakeup.wake_run, run_id, handed))
        self.agents_dispatch_on_commit(
            d.agent_id for d in deliveries if d.parent_run_id is not None or d.agent_id not in live
        )

    def agents_dispatch_on_commit(self, agent_ids: Iterable[int]) -> None:
        for agent_id in dict.fromkeys(agent_ids):
            transaction.on_commit(functools.partial(_dispatch_safely, agent_id))
