"""Archiving an agent: what deleting one does. Nothing of its history is lost.

Its live runs are stopped first (their processes end, their runs end `cancelled`), the
messages still waiting for it fail visibly, and the agent row is marked archived
(apps.agents.services.agent_mark_archived): out of the team's lists, never dispatched, its
handle free for a new agent. Its runs, events, messages, deliveries, artifacts and usage stay,
shown under the archived agent; foreign keys to it are PROTECT, so they never cascade away.
"""

from __future__ import annotations

from django.db import transaction

from apps.agents.models import Agent
from apps.agents.services import agent_mark_archived
from apps.runs.models import Run
from apps.runs.transitions import run_request_cancel
from apps.teams.models import Membership
from apps.threads.deliveries import deliveries_fail_for_agent


def archived_reason(agent: Agent) -> str:
    return f"@{agent.handle} was archived; it takes no more messages."


@transaction.atomic
def agent_archive(*, actor: Membership, agent: Agent) -> list[Run]:
    """Archive the agent, stopping its live runs; returns the runs it stopped (none when it
    was already archived). An admin's act: agent_mark_archived checks the role."""
    # Dispatches of the agent take the same lock (apps.runs.routing): one that ran before
    # has committed the run it created, which is stopped below; one after finds it archived.
    Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).values_list("pk").get()
    if not agent_mark_archived(actor=actor, agent=agent):
        return []
    live = list(
        Run.objects.filter(agent=agent).active().select_related("agent", "thread").order_by("id")
    )
    for run in live:
        run_request_cancel(actor=None, run=run)  # the admin may; the process ends at once
    deliveries_fail_for_agent(agent_id=agent.pk, reason=archived_reason(agent))
    return live
