from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.agents.models import Agent
from apps.core.errors import NotFound
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team


def agent_list(*, team: Team) -> QuerySet[Agent]:
    return Agent.objects.filter(team=team).prefetch_related("secrets").order_by("handle")


def agent_get(*, team: Team, agent_id: int) -> Agent:
    agent = Agent.objects.filter(team=team, pk=agent_id).first()
    if agent is None:
        raise NotFound()
    return agent


def access_agent(
    *, user: User | AnonymousUser, agent_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Agent]:
    """The agent and the user's membership of its team, checked for `role`; another team's
    agent is NotFound, like a missing one (see access_team)."""
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise NotFound()
    membership = access_team(user=user, team_id=agent.team_id, role=role)
    agent.team = membership.team
    return membership, agent


def agents_by_handle(*, team: Team, handles: set[str]) -> dict[str, Agent]:
    return {a.handle: a for a in Agent.objects.filter(team=team, handle__in=handles)}
