"""What an agent inside a sandbox can change, as its run's agent and in its team only.

One set of verbs behind every door: the MCP server, the REST endpoints the `oz` CLI calls,
and tests (the table is apps.agentapi.verbs; the reads are in apps.agentapi.selectors). They
call the same services humans use, so an agent's message wakes its recipient exactly as a
human's does.
"""

from __future__ import annotations

from django.db import transaction

from apps.agentapi import selectors
from apps.agentapi.context import AgentContext
from apps.agents.models import Agent
from apps.artifacts import services as artifact_services
from apps.artifacts.models import ArtifactKind, ArtifactVersion, MemoryNote
from apps.core.errors import ServiceError
from apps.runs.routing import deliveries_dispatch
from apps.threads.deliveries import deliveries_set_state
from apps.threads.mentions import extract_mentions
from apps.threads.models import Delivery, DeliveryState, Message, Thread
from apps.threads.services import NewMessage, check_body, messages_append

# -- messages --------------------------------------------------------------------------------


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
                run_id=ctx.run.pk,
                hop=ctx.run.hop + 1,
                recipients=recipients,
                data=data,
            )
        ],
    )
    return message


# No transaction of their own: what they read first is lookups, and messages_append's is then
# the outermost (no savepoint around it: two statements fewer per agent message).
def post_message(ctx: AgentContext, *, body: str, thread: int | str | None = None) -> Message:
    """Post to the run's thread (or a named one); @mentions in it address those agents."""
    target = selectors.thread_find(ctx, thread)
    agents, _ = selectors.recipients_find(ctx, extract_mentions(body))
    return _post(ctx, thread=target, body=body, recipients=agents, data={})


def send_message(
    ctx: AgentContext, *, to: list[str] | str, body: str, thread: int | str | None = None
) -> Message:
    """A message to one or more @handles (agents or humans), posted where people can see it."""
    handles = [to] if isinstance(to, str) else list(to or [])
    handles += extract_mentions(body)
    if not handles:
        raise ServiceError("Say who the message is for.", field="to")
    agents, humans = selectors.recipients_find(ctx, handles)
    target = selectors.thread_find(ctx, thread)
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


def read_inbox(ctx: AgentContext, *, limit: int = 50, include_read: bool = False) -> list[Delivery]:
    """Messages addressed to this agent that it has not acknowledged, oldest first; unread
    ones are marked read."""
    deliveries = selectors.inbox_list(ctx, limit=limit, include_read=include_read)
    unread = [d for d in deliveries if d.state != DeliveryState.READ]
    deliveries_set_state(deliveries=unread, state=DeliveryState.READ)
    return deliveries


def ack(ctx: AgentContext, *, deliveries: list[int]) -> int:
    """Acknowledge messages (by delivery id): done with them."""
    owned = selectors.inbox_unacked(ctx, deliveries=deliveries)
    deliveries_set_state(deliveries=owned, state=DeliveryState.ACKED)
    return len(owned)


# -- delegation ------------------------------------------------------------------------------


def delegate(ctx: AgentContext, *, to: str, goal: str) -> Delivery:
    """Give another agent a goal. Its run is a child of this one; when it ends, its result is
    posted back to this run's agent whatever the child's model does. Returns the delegation:
    the goal's delivery to the delegate, with its child run once one is started."""
    agents, _ = selectors.recipients_find(ctx, [to]) if to else ([], [])
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
            thread=selectors.thread_find(ctx, None),
            items=[
                NewMessage(
                    body=f"Delegated to @{target.handle}: {goal}",
                    author_agent=ctx.agent,
                    run_id=ctx.run.pk,
                    hop=ctx.run.hop + 1,
                    recipients=[target],
                    parent_run_id=ctx.run.pk,
                    data={"delegation": True, "goal": goal, "to": target.handle},
                )
            ],
        )
    delivery = message.delivery_rows()[0]
    deliveries_dispatch(agent_id=target.pk)
    return selectors.delegation_get(delegation=delivery.pk)


# -- artifacts and memory --------------------------------------------------------------------


def put_artifact(
    ctx: AgentContext,
    *,
    name: str,
    content: str,
    kind: str = ArtifactKind.FILE,
    media_type: str = "",
    url: str = "",
) -> ArtifactVersion:
    return artifact_services.artifact_put(
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


def memory_set(ctx: AgentContext, *, key: str, value: str) -> MemoryNote:
    return artifact_services.memory_set(team=ctx.team, key=key, value=value, agent=ctx.agent)
