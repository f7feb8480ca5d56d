from __future__ import annotations

from django.db.models import QuerySet

from apps.agents.models import Agent
from apps.core.errors import NotFound
from apps.teams.models import Team


def agent_list(*, team: Team) -> QuerySet[Agent]:
    return Agent.objects.filter(team=team).prefetch_related("secrets").order_by("handle")


def agent_get(*, team: Team, agent_id: int) -> Agent:
    agent = Agent.objects.filter(team=team, pk=agent_id).first()
    if agent is None:
        raise NotFound()
    return agent


def agents_by_handle(*, team: Team, handles: set[str]) -> dict[str, Agent]:
    return {a.handle: a for a in Agent.objects.filter(team=team, handle__in=handles)}
