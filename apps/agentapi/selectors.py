"""What an agent inside a sandbox can read, as its run's agent and in its team only: the read
verbs, and the look-ups the write verbs (apps.agentapi.services) start from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from apps.agentapi import payloads
from apps.agentapi.context import AgentContext
from apps.agents.models import Agent
from apps.agents.services import refuse_archived_handles
from apps.artifacts import selectors as artifact_selectors
from apps.artifacts import services as artifact_services
from apps.core import sql
from apps.core.errors import NotFound, ServiceError
from apps.core.ids import bounded_int, is_id
from apps.runs.models import FINISHED_STATUSES, Run
from apps.teams.models import Membership
from apps.threads.models import Delivery, DeliveryState, Thread

INBOX_LIMIT = 100
AGENT_FIELDS = ("id", "team_id", "handle", "display_name", "harness", "status", "archived_at")
# Ids per statement when many delegations are checked at once (SQLite allows 999 parameters).
PROGRESS_BATCH = 500


# -- who -------------------------------------------------------------------------------------


def whoami(ctx: AgentContext) -> dict[str, Any]:
    return payloads.caller_payload(ctx.run)


def list_team(ctx: AgentContext) -> dict[str, Any]:
    agents = Agent.objects.active().filter(team=ctx.team).order_by("handle")
    members = (
        Membership.objects.filter(team=ctx.team).select_related("user").order_by("user__username")
    )
    return {
        "team": ctx.team.name,
        "agents": [payloads.teammate_payload(a, caller=ctx.agent) for a in agents],
        "humans": [payloads.member_payload(m) for m in members],
    }


def recipients_find(ctx: AgentContext, handles: Sequence[str]) -> tuple[list[Agent], list[str]]:
    """Agents and human usernames for `handles`; any unknown handle refuses the whole send.

    On every agent message: plain SQL (apps.core.sql), and the members only when a handle is
    not an agent's."""
    wanted = list(dict.fromkeys(h.strip().lstrip("@").lower() for h in handles if h and h.strip()))
    found = (
        sql.rows(
            "SELECT {fields} FROM {Agent} WHERE {Agent.team} = %s AND {Agent.handle} IN ({in_}) "
            "AND {Agent.archived_at} IS NULL",
            [ctx.team.pk, *wanted],
            Agent=Agent,
            fields=sql.columns(Agent, AGENT_FIELDS),
            in_=sql.markers(wanted),
        )
        if wanted
        else []
    )
    agents = {a.handle: a for a in sql.instances(Agent, AGENT_FIELDS, found)}
    humans = [h for h in wanted if h not in agents]
    if humans:
        User = get_user_model()
        usernames = {
            u.lower()
            for u in User.objects.filter(memberships__team=ctx.team).values_list(
                "username", flat=True
            )
        }
        unknown = [h for h in humans if h not in usernames]
        if unknown:
            refuse_archived_handles(
                team_id=ctx.team.pk,
                handles=unknown,
                field="to",
                hint=" Use list_team to see who is here.",
            )
            team_agents = Agent.objects.active().filter(team=ctx.team).order_by("handle")
            known = (
                ", ".join(f"@{h}" for h in team_agents.values_list("handle", flat=True)) or "none"
            )
            raise ServiceError(
                f"No agent or member of this team is called "
                f"{', '.join('@' + h for h in unknown)}. "
                f"Use list_team to see who is here (agents: {known}).",
                field="to",
                code="unknown_recipient",
            )
    return [agents[h] for h in wanted if h in agents], humans


# -- threads and the inbox -------------------------------------------------------------------


def thread_find(ctx: AgentContext, thread: int | str | None) -> Thread:
    """The run's thread, or one named by id or `#name` in the agent's team."""
    if thread is None or thread == "":
        if ctx.run.thread is None:
            raise ServiceError("This run has no thread; name one.", field="thread")
        return ctx.run.thread
    threads = Thread.objects.filter(team=ctx.team)
    thread_id = thread if isinstance(thread, int) else bounded_int(thread)
    if is_id(thread_id):
        found = threads.filter(pk=thread_id).first()
    elif isinstance(thread, int) or (thread.isascii() and thread.isdigit()):
        found = None  # an id out of range names no thread
    else:
        found = threads.filter(name=thread.strip().lstrip("#").lower()).first()
    if found is None:
        raise NotFound(f"No thread {thread!r} in this team.")
    return found


def inbox_list(ctx: AgentContext, *, limit: int, include_read: bool) -> list[Delivery]:
    """Messages addressed to this agent that it has not acknowledged, oldest first."""
    states = [DeliveryState.PENDING, DeliveryState.DELIVERED]
    if include_read:
        states.append(DeliveryState.READ)
    return list(
        Delivery.objects.filter(agent=ctx.agent, state__in=states, held=False)
        .select_related("agent", "message__thread", "message__author_user", "message__author_agent")
        .order_by("id")[: max(1, min(limit, INBOX_LIMIT))]
    )


def inbox_unacked(ctx: AgentContext, *, deliveries: Sequence[int]) -> list[Delivery]:
    """Those of these deliveries that are this agent's and not acknowledged (or failed)."""
    return list(
        Delivery.objects.filter(agent=ctx.agent, pk__in=[int(d) for d in deliveries])
        .exclude(state__in=[DeliveryState.ACKED, DeliveryState.FAILED])
        .select_related("message", "agent")
    )


# -- runs and delegations --------------------------------------------------------------------


def get_run(ctx: AgentContext, *, run_id: int) -> dict[str, Any]:
    run = Run.objects.filter(team=ctx.team, pk=run_id).select_related("agent").first()
    if run is None:
        raise NotFound(f"No run {run_id} in this team.")
    children = list(run.children.values_list("pk", flat=True))
    return payloads.run_detail_payload(run, children=children)


def delegation_get(*, delegation: int) -> Delivery:
    """A delegation (the delivery of its goal to the delegate) with its child run, if any."""
    found = Delivery.objects.select_related("run", "agent").filter(pk=delegation).first()
    if found is None:  # its history was removed while the call waited
        raise NotFound(f"Delegation {delegation} no longer exists.")
    return found


def delegation_child_get(*, delegation: Delivery, child: int | None) -> Run | None:
    """The delegation's child run `child` (the one a call waited for, which is the
    delegation's run unless the goal went back to the delegate since), or its run."""
    if child is None or child == delegation.run_id:
        return delegation.run
    return Run.objects.filter(pk=child).first()


@dataclass(frozen=True)
class ChildProgress:
    """How far a delegation has come: its child run (once started) and whether it ended."""

    child: int | None
    finished: bool


def delegations_progress(*, children: Mapping[int, int | None]) -> dict[int, ChildProgress]:
    """By delegation: the progress of its known child run, or (none known yet) of whatever
    run it has now. A delegation or child that no longer exists counts as finished."""
    progress = {d: ChildProgress(child=c, finished=True) for d, c in children.items()}
    known = {c: d for d, c in children.items() if c is not None}
    unknown = [d for d, c in children.items() if c is None]
    for ids in _batches(list(known)):
        for child, status in Run.objects.filter(pk__in=ids).values_list("pk", "status"):
            progress[known[child]] = ChildProgress(child, status in FINISHED_STATUSES)
    for ids in _batches(unknown):
        rows = Delivery.objects.filter(pk__in=ids).values_list("pk", "run_id", "run__status")
        for delegation, child, status in rows:  # no child yet: no status
            progress[delegation] = ChildProgress(child, status in FINISHED_STATUSES)
    return progress


def _batches(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + PROGRESS_BATCH] for i in range(0, len(ids), PROGRESS_BATCH)]


# -- artifacts and memory --------------------------------------------------------------------


def get_artifact(ctx: AgentContext, *, name: str, version: int | None = None) -> dict[str, Any]:
    artifact = artifact_selectors.artifact_get(team=ctx.team, name=name)
    found = artifact_selectors.artifact_version_get(artifact=artifact, version=version)
    return {
        **payloads.artifact_version_payload(found),
        "content": artifact_services.artifact_version_text(found),
    }


def list_artifacts(ctx: AgentContext, *, thread: int | str | None = None) -> list[dict[str, Any]]:
    thread_id = thread_find(ctx, thread).pk if thread not in (None, "") else None
    return [
        payloads.artifact_payload(a)
        for a in artifact_selectors.artifact_list(team=ctx.team, thread_id=thread_id)
    ]


def memory_get(ctx: AgentContext, *, key: str) -> dict[str, Any]:
    return payloads.note_payload(artifact_selectors.memory_get(team=ctx.team, key=key))


def memory_list(ctx: AgentContext, *, prefix: str = "") -> list[dict[str, Any]]:
    return [
        payloads.note_payload(n)
        for n in artifact_selectors.memory_list(team=ctx.team, prefix=prefix)
    ]
