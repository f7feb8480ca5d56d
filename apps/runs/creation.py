"""Creating runs: a human starts one, or a message wakes an agent (apps/runs/routing.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import transaction

from apps.agents.models import Agent
from apps.agents.services import require_not_archived
from apps.core.errors import PermissionDenied, ServiceError
from apps.runs.dispatch import dispatch_on_commit
from apps.runs.models import Run
from apps.runs.transitions import broadcast_run, post_status
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.deliveries import deliveries_assign
from apps.threads.models import Delivery, Thread
from apps.threads.services import check_body, thread_direct_for_agent

MAX_PROMPT_BYTES = 256 * 1024


@dataclass(frozen=True)
class NewRun:
    """What a run is for: its agent, its prompt, where it reports, and why it exists."""

    agent: Agent
    prompt: str
    thread: Thread | None = None  # None: the agent's direct thread
    parent: Run | None = None  # a delegation: the run that delegated it
    created_by: User | None = None
    deliveries: Iterable[Delivery] = field(default=())  # the messages that are its prompt
    hop: int = 0


@transaction.atomic
def run_create(new: NewRun) -> Run:
    """Queue a run; it is dispatched to a worker once this transaction commits.

    It resumes the agent's latest harness session in the same thread, so the agent keeps
    its context across follow-ups.
    """
    agent = new.agent
    # Archiving takes this lock too (apps.runs.archiving): a run is never created beside it.
    agent.archived_at = (
        Agent.objects.select_for_update(no_key=True)
        .filter(pk=agent.pk)
        .values_list("archived_at", flat=True)
        .get()
    )
    require_not_archived(agent)
    if not new.prompt or not new.prompt.strip():
        raise ServiceError("A run needs a prompt.", field="prompt")
    if len(new.prompt.encode()) > MAX_PROMPT_BYTES:
        raise ServiceError("The prompt is over 256 KiB.", field="prompt", code="too_large")
    thread = new.thread or thread_direct_for_agent(agent=agent)
    if thread.team_id != agent.team_id:
        raise PermissionDenied()
    resumes = (
        Run.objects.filter(agent=agent, thread=thread, harness=agent.harness)
        .exclude(session_id="")
        .order_by("-id")
        .first()
    )
    run = Run.objects.create(
        team_id=agent.team_id,
        agent=agent,
        thread=thread,
        parent=new.parent,
        resumes=resumes,
        prompt=new.prompt,
        harness=agent.harness,
        created_by=new.created_by,
        hop=new.hop,
    )
    run.thread = thread
    deliveries_assign(deliveries=new.deliveries, run_id=run.pk)
    post_status(run, f"@{agent.handle} picked this up (run {run.pk}).")
    broadcast_run(run)
    dispatch_on_commit(run.pk)
    return run


def run_start(*, actor: Membership, agent: Agent, prompt: str, thread: Thread | None) -> Run:
    """A human starts a run from the API or the agent page."""
    require_role(actor, Role.MEMBER, "Viewers cannot start runs.", team_id=agent.team_id)
    if thread is not None:
        require_role(actor, Role.MEMBER, team_id=thread.team_id)
    check_body(prompt)
    return run_create(NewRun(agent=agent, prompt=prompt, thread=thread, created_by=actor.user))
