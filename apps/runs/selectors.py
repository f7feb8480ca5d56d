from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, QuerySet

from apps.agents.models import Agent
from apps.core.errors import NotFound
from apps.core.prepared import PreparedQuery
from apps.runs.models import Run, RunEvent
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team
from apps.threads.models import Delivery


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


@dataclass(frozen=True)
class ControlLook:
    """What a running executor looks for every second."""

    cancel_requested: bool
    messages_waiting: bool  # deliveries its run may take (Delivery.objects.for_run_of)


# Each running executor asks once a second (apps.core.prepared: compiled once): twenty
# running agents asked with two ORM-built queries cost 8% of a core while idle.
_control_look: PreparedQuery[tuple[bool, bool]] = PreparedQuery(
    lambda run_id: Run.objects.filter(pk=run_id).values_list(
        "cancel_requested",
        Exists(
            # (The run's own columns; for_run_of's lookups take these as they take ids.)
            Delivery.objects.for_run_of(
                agent_id=OuterRef("agent_id"),  # type: ignore[arg-type]
                thread_id=OuterRef("thread_id"),  # type: ignore[arg-type]
                run_id=OuterRef("pk"),  # type: ignore[arg-type]
            )
        ),
    ),
    run_id=int,
)


def run_control_look(*, run_id: int) -> ControlLook | None:
    """Whether the run was asked to stop and whether messages wait for it (None: no run)."""
    found = _control_look(run_id=run_id)
    if not found:
        return None
    cancel_requested, waiting = found[0]
    return ControlLook(cancel_requested=bool(cancel_requested), messages_waiting=bool(waiting))


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
