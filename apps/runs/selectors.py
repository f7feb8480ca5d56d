from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.agents.models import Agent
from apps.core.errors import NotFound
from apps.runs.models import Run, RunEvent
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team


def run_list_for_user(
    *,
    user: User,
    thread: int | None = None,
    agent: int | None = None,
    status: str | None = None,
) -> QuerySet[Run]:
    runs = Run.objects.filter(team__memberships__user=user).select_related("agent")
    if thread is not None:
        runs = runs.filter(thread_id=thread)
    if agent is not None:
        runs = runs.filter(agent_id=agent)
    if status:
        runs = runs.filter(status=status)
    return runs.prefetch_related("children").order_by("-id")


def run_list_live(*, agent: Agent) -> list[Run]:
    """The agent's queued, starting and running runs (the agent is the actor's: see
    access_agent)."""
    return list(Run.objects.filter(agent=agent).active().select_related("thread").order_by("id"))


def access_run(
    *, user: User | AnonymousUser, run_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Run]:
    """The run and the user's membership of its team, checked for `role`; another team's run
    is NotFound, like a missing one (see access_team)."""
    run = (
        Run.objects.select_related("agent", "thread", "parent")
        .prefetch_related("children")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise NotFound()
    membership = access_team(user=user, team_id=run.team_id, role=role)
    run.team = membership.team
    return membership, run


def run_events(*, run: Run, since: int = 0, limit: int = 500) -> list[RunEvent]:
    return list(run.events.filter(seq__gt=since).order_by("seq")[:limit])


def run_tree(*, run: Run) -> tuple[Run, list[tuple[Run, int]]]:
    """The root of the run's delegation tree and all its runs with their depth, in order."""
    root = run
    seen = {root.pk}
    while root.parent_id is not None and root.parent_id not in seen:
        root = Run.objects.select_related("agent", "parent").get(pk=root.parent_id)
        seen.add(root.pk)
    rows: list[tuple[Run, int]] = []

    def walk(node: Run, depth: int) -> None:
        rows.append((node, depth))
        for child in Run.objects.filter(parent=node).select_related("agent").order_by("id"):
            if len(rows) < 500:
                walk(child, depth + 1)

    walk(root, 0)
    return root, rows
