from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.agents.models import Agent
from apps.core import sql
from apps.core.errors import NotFound
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team


def agent_list(*, team: Team, archived: bool = False) -> QuerySet[Agent]:
    """The team's agents; archived ones only when asked for (then only those)."""
    agents = Agent.objects.archived() if archived else Agent.objects.active()
    return agents.filter(team=team).prefetch_related("secrets").order_by("handle", "-id")


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


def archived_handles(*, team_id: int, handles: Iterable[str]) -> list[str]:
    """Those of `handles` that an archived agent of the team had. For callers that found no
    active agent by them, to say why a message to them is refused."""
    found = Agent.objects.archived().filter(team_id=team_id, handle__in=set(handles))
    return sorted(set(found.values_list("handle", flat=True)))


# What message delivery reads of an agent; other fields load on first use.
DELIVERY_FIELDS = ("id", "team_id", "handle", "display_name", "harness", "status", "archived_at")


def active_agents_by_pk(*, pks: Iterable[int]) -> list[Agent]:
    """The active agents among `pks`, by handle. Plain SQL (apps.core.sql): a post in a thread
    with running agents looks them up on every message, and the ORM's query building was a
    tenth of a REST post's CPU (bench/writes.py)."""
    wanted = list(dict.fromkeys(pks))
    if not wanted:
        return []
    found = sql.rows(
        "SELECT {fields} FROM {Agent} WHERE {Agent.id} IN ({in_}) AND {Agent.archived_at} IS NULL "
        "ORDER BY {Agent.handle}",  # as the model's default ordering
        wanted,
        Agent=Agent,
        fields=sql.columns(Agent, DELIVERY_FIELDS),
        in_=sql.markers(wanted),
    )
    return sql.instances(Agent, DELIVERY_FIELDS, found)
