"""What an agent inside a sandbox can do, as its run's agent and in its team only.

One set of verbs behind every door: the MCP server, the REST endpoints the `oz` CLI calls,
and tests. They call the same services humans use, so an agent's message wakes its recipient
exactly as a human's does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.agents.models import Agent
from apps.artifacts import selectors as artifact_selectors
from apps.artifacts import services as artifact_services
from apps.artifacts.models import ArtifactKind
from apps.core import sql
from apps.core.db import connections_done
from apps.core.errors import NotFound, ServiceError
from apps.runs import services as run_services
from apps.runs.events import run_payload
from apps.runs.models import Run
from apps.teams.models import Membership, Team
from apps.threads.events import message_payload
from apps.threads.mentions import extract_mentions
from apps.threads.models import Delivery, DeliveryState, Message, Thread
from apps.threads.services import NewMessage, check_body, messages_append

INBOX_LIMIT = 100
DELEGATE_WAIT_MAX_SECONDS = 1800
DELEGATE_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class AgentContext:
    """Who is calling: the run (active), its agent and its team."""

    run: Run

    @property
    def agent(self) -> Agent:
        return self.run.agent

    @property
    def team(self) -> Team:
        return self.run.team


# -- who -------------------------------------------------------------------------------------


def whoami(ctx: AgentContext) -> dict[str, Any]:
    run = ctx.run
    return {
        "handle": ctx.agent.handle,
        "display_name": ctx.agent.display_name,
        "agent_id": ctx.agent.pk,
        "team": {"id": ctx.team.pk, "name": ctx.team.name},
        "run": run.pk,
        "thread": run.thread_id,
        "thread_label": run.thread.label if run.thread_id else None,
        "parent_run": run.parent_id,
        "hop": run.hop,
    }


def list_team(ctx: AgentContext) -> dict[str, Any]:
    agents = [
        {
            "handle": a.handle,
            "display_name": a.display_name,
            "harness": a.harness,
            "status": a.status,
            "instructions": a.instructions[:300],
            "you": a.pk == ctx.agent.pk,
        }
        for a in Agent.objects.filter(team=ctx.team).order_by("handle")
    ]
    humans = [
        {
            "handle": m.user.username,
            "name": m.user.get_full_name() or m.user.username,
            "role": m.role,
        }
        for m in Membership.objects.filter(team=ctx.team)
        .select_related("user")
        .order_by("user__username")
    ]
    return {"team": ctx.team.name, "agents": agents, "humans": humans}


# -- messages --------------------------------------------------------------------------------


def _thread(ctx: AgentContext, thread: int | str | None) -> Thread:
    """The run's thread, or one named by id or `#name` in the agent's team."""
    if thread in (None, ""):
        if ctx.run.thread_id is None:
            raise ServiceError("This run has no thread; name one.", field="thread")
        return ctx.run.thread
    threads = Thread.objects.filter(team=ctx.team)
    found = None
    if isinstance(thread, int) or str(thread).isdigit():
        found = threads.filter(pk=int(thread)).first()
    else:
        found = threads.filter(name=str(thread).strip().lstrip("#").lower()).first()
    if found is None:
        raise NotFound(f"No thread {thread!r} in this team.")
    return found


AGENT_FIELDS = ("id", "team_id", "handle", "display_name", "harness", "status")


def _recipients(ctx: AgentContext, handles: list[str]) -> tuple[list[Agent], list[str]]:
    """Agents and human usernames for `handles`; any unknown handle refuses the whole send.

    On every agent message: plain SQL (apps.core.sql), and the members only when a handle is
    not an agent's."""
    wanted = list(dict.fromkeys(h.strip().lstrip("@").lower() for h in handles if h and h.strip()))
    found = (
        sql.rows(
            "SELECT {fields} FROM {Agent} WHERE {Agent.team} = %s AND {Agent.handle} IN ({in_})",
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
            team_agents = Agent.objects.filter(team=ctx.team).order_by("handle")
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


def _post(
    ctx: AgentContext, *, thread: Thread, body: str, recipients: list[Agent], data: dict
) -> Message:
    check_body(body)
    if not body.strip():
        raise ServiceError("The message is empty.", field="body")
    recipients = [a for a in recipients if a.pk != ctx.agent.pk]  # no talking to yourself
    [message] = messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=body,
                author_agent=ctx.agent,
                run=ctx.run,
                hop=ctx.run.hop + 1,
                recipients=recipients,
                data=data,
            )
        ],
    )
    return message


@transaction.atomic
def post_message(ctx: AgentContext, *, body: str, thread: int | str | None = None) -> Message:
    """Post to the run's thread (or a named one); @mentions in it address those agents."""
    target = _thread(ctx, thread)
    agents, _ = _recipients(ctx, extract_mentions(body))
    return _post(ctx, thread=target, body=body, recipients=agents, data={})


@transaction.atomic
def send_message(
    ctx: AgentContext, *, to: list[str] | str, body: str, thread: int | str | None = None
) -> Message:
    """A message to one or more @handles (agents or humans), posted where people can see it."""
    handles = [to] if isinstance(to, str) else list(to or [])
    handles += extract_mentions(body)
    if not handles:
        raise ServiceError("Say who the message is for.", field="to")
    agents, humans = _recipients(ctx, handles)
    target = _thread(ctx, thread)
    named = {f"@{a.handle}" for a in agents} | {f"@{h}" for h in humans}
    missing = sorted(n for n in named if n.lower() not in body.lower())
    text = f"{' '.join(missing)} {body}" if missing else body
    return _post(
        ctx,
        thread=target,
        body=text,
        recipients=agents,
        data={"to": sorted(named)},
    )


def read_inbox(ctx: AgentContext, *, limit: int = 50, include_read: bool = False) -> list[dict]:
    """Messages addressed to this agent that it has not acknowledged, oldest first; unread
    ones are marked read."""
    states = [DeliveryState.PENDING, DeliveryState.DELIVERED]
    if include_read:
        states.append(DeliveryState.READ)
    deliveries = list(
        Delivery.objects.filter(agent=ctx.agent, state__in=states, held=False)
        .select_related("agent", "message__thread", "message__author_user", "message__author_agent")
        .order_by("id")[: max(1, min(limit, INBOX_LIMIT))]
    )
    unread = [d for d in deliveries if d.state != DeliveryState.READ]
    run_services.deliveries_set_state(deliveries=unread, state=DeliveryState.READ)
    return [
        {
            "delivery": d.pk,
            "state": d.state,
            "thread": d.message.thread_id,
            "thread_label": d.message.thread.label,
            "message": message_payload(d.message),
        }
        for d in deliveries
    ]


def ack(ctx: AgentContext, *, deliveries: list[int]) -> int:
    """Acknowledge messages (by delivery id): done with them."""
    owned = list(
        Delivery.objects.filter(agent=ctx.agent, pk__in=[int(d) for d in deliveries])
        .exclude(state__in=[DeliveryState.ACKED, DeliveryState.FAILED])
        .select_related("message", "agent")
    )
    run_services.deliveries_set_state(deliveries=owned, state=DeliveryState.ACKED)
    return len(owned)


# -- delegation ------------------------------------------------------------------------------


def delegate(
    ctx: AgentContext, *, to: str, goal: str, wait: bool = False, timeout: float = 600
) -> dict[str, Any]:
    """Give another agent a goal. Its run is a child of this one; when it ends, its result is
    posted back to this run's agent whatever the child's model does. With `wait`, block until
    then (at most `timeout` seconds) and return the result."""
    agents, _ = _recipients(ctx, [to]) if to else ([], [])
    if not agents:
        raise ServiceError("Delegate to an agent's @handle (see list_team).", field="to")
    target = agents[0]
    if target.pk == ctx.agent.pk:
        raise ServiceError("An agent cannot delegate to itself.", field="to")
    check_body(goal)
    if not goal.strip():
        raise ServiceError("Give the goal to delegate.", field="goal")
    with transaction.atomic():
        [message] = messages_append(
            thread=_thread(ctx, None),
            items=[
                NewMessage(
                    body=f"Delegated to @{target.handle}: {goal}",
                    author_agent=ctx.agent,
                    run=ctx.run,
                    hop=ctx.run.hop + 1,
                    recipients=[target],
                    parent_run=ctx.run,
                    data={"delegation": True, "goal": goal, "to": target.handle},
                )
            ],
        )
    delivery = message.delivery_rows()[0]
    run_services.deliveries_dispatch(agent_id=target.pk)
    delivery.refresh_from_db()
    if not wait:
        return _delegation_status(delivery)
    return _wait_for_child(delivery, timeout=min(max(timeout, 1), DELEGATE_WAIT_MAX_SECONDS))


def _delegation_status(delivery: Delivery) -> dict[str, Any]:
    child = delivery.run
    status: dict[str, Any] = {
        "delegation": delivery.pk,
        "to": delivery.agent.handle,
        "run": child.pk if child else None,
        "status": child.status if child else ("held" if delivery.held else "waiting"),
    }
    if delivery.held:
        status["reason"] = delivery.reason
    if child is not None and child.is_finished:
        status.update(result=child.result_text, error=child.error or None)
    return status


def _wait_for_child(delivery: Delivery, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    marked = False
    while True:
        delivery.refresh_from_db()
        child = Run.objects.filter(pk=delivery.run_id).first() if delivery.run_id else None
        if child is not None and not marked:
            # The result comes back through this call: no need to wake us with it again.
            Run.objects.filter(pk=child.pk).update(parent_waiting=True)
            marked = True
        if child is not None and child.is_finished:
            break
        if time.monotonic() >= deadline:
            if child is not None:
                Run.objects.filter(pk=child.pk).update(parent_waiting=False)
            status = _delegation_status(delivery)
            status["timed_out_waiting"] = True
            return status
        connections_done()  # a pool gets a PostgreSQL connection back while this waits
        time.sleep(DELEGATE_POLL_SECONDS)
    # If the child finished before it was marked, its result was also delivered as a message.
    return _delegation_status(delivery)


def get_run(ctx: AgentContext, *, run_id: int) -> dict[str, Any]:
    run = Run.objects.filter(team=ctx.team, pk=run_id).select_related("agent").first()
    if run is None:
        raise NotFound(f"No run {run_id} in this team.")
    payload = run_payload(run)
    payload.update(
        agent_handle=run.agent.handle,
        result=run.result_text,
        children=list(run.children.values_list("pk", flat=True)),
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
    )
    return payload


# -- artifacts and memory --------------------------------------------------------------------


def put_artifact(
    ctx: AgentContext,
    *,
    name: str,
    content: str,
    kind: str = ArtifactKind.FILE,
    media_type: str = "",
    url: str = "",
) -> dict[str, Any]:
    version = artifact_services.artifact_put(
        team=ctx.team,
        name=name,
        content=content,
        kind=kind,
        media_type=media_type,
        url=url,
        thread=ctx.run.thread,
        author_run=ctx.run,
        author_agent=ctx.agent,
    )
    return artifact_version_payload(version)


def get_artifact(ctx: AgentContext, *, name: str, version: int | None = None) -> dict[str, Any]:
    artifact = artifact_selectors.artifact_get(team=ctx.team, name=name)
    found = artifact_selectors.artifact_version_get(artifact=artifact, version=version)
    return {
        **artifact_version_payload(found),
        "content": artifact_services.artifact_version_text(found),
    }


def list_artifacts(ctx: AgentContext, *, thread: int | str | None = None) -> list[dict]:
    thread_id = _thread(ctx, thread).pk if thread not in (None, "") else None
    return [
        {
            "name": a.name,
            "kind": a.kind,
            "latest_version": a.latest_version,
            "thread": a.thread_id,
            "updated_at": a.updated_at.isoformat(),
        }
        for a in artifact_selectors.artifact_list(team=ctx.team, thread_id=thread_id)
    ]


def artifact_version_payload(version: Any) -> dict[str, Any]:
    return {
        "artifact": version.artifact_id,
        "name": version.artifact.name,
        "kind": version.artifact.kind,
        "version": version.version,
        "sha256": version.sha256,
        "size": version.size,
        "media_type": version.media_type,
        "url": version.url,
        "author_run": version.author_run_id,
        "created_at": version.created_at.isoformat() if version.created_at else None,
    }


def memory_get(ctx: AgentContext, *, key: str) -> dict[str, Any]:
    note = artifact_services.memory_get(team=ctx.team, key=key)
    return _note(note)


def memory_set(ctx: AgentContext, *, key: str, value: str) -> dict[str, Any]:
    return _note(artifact_services.memory_set(team=ctx.team, key=key, value=value, agent=ctx.agent))


def memory_list(ctx: AgentContext, *, prefix: str = "") -> list[dict[str, Any]]:
    return [_note(n) for n in artifact_selectors.memory_list(team=ctx.team, prefix=prefix)]


def _note(note: Any) -> dict[str, Any]:
    by = (
        f"@{note.updated_by_agent.handle}"
        if note.updated_by_agent_id
        else (note.updated_by_user.username if note.updated_by_user_id else None)
    )
    return {
        "key": note.key,
        "value": note.value,
        "updated_by": by,
        "updated_at": (note.updated_at or timezone.now()).isoformat(),
    }
