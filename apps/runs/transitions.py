"""Run status moves: guarded updates, and what each move means for the agent and the thread.

    queued → starting → running → succeeded | failed | cancelled | timed_out

Every move is one `UPDATE … WHERE status IN (…)`, so two workers can never both advance a run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.agents.models import AgentStatus
from apps.agents.services import agent_set_status
from apps.core.realtime import broadcast_on_commit
from apps.core.registry import dispatcher, publish_event
from apps.runs import events, wakeup
from apps.runs.models import FINISHED_STATUSES, Run, RunStatus
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.deliveries import deliveries_settle_ended_run
from apps.threads.models import MessageKind
from apps.threads.services import NewMessage, messages_append


def post_status(run: Run, body: str, **data: Any) -> None:
    """A status line from the platform in the run's thread."""
    if (thread := run.thread) is None:  # no query: the descriptor knows a null id
        return
    messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=body,
                kind=MessageKind.STATUS,
                author_agent=run.agent,
                data={"run_status": run.status, **data},
                run_id=run.pk,
            )
        ],
    )


def broadcast_run(run: Run) -> None:
    broadcast_on_commit(events.run_group(run.pk), lambda: events.run_changed_event(run))


def run_transition(
    *, run: Run, from_statuses: Iterable[RunStatus], to: RunStatus, **fields: Any
) -> bool:
    """Move a run's status only if it is still in one of `from_statuses` (one UPDATE)."""
    now = timezone.now()
    if to == RunStatus.RUNNING:
        fields.setdefault("started_at", now)
    if to in FINISHED_STATUSES:
        fields.setdefault("finished_at", now)
    with transaction.atomic():
        moved = Run.objects.filter(pk=run.pk, status__in=list(from_statuses)).update(
            status=to, updated_at=now, **fields
        )
        if not moved:
            return False
        run.status = to
        for name, value in fields.items():
            setattr(run, name, value)
        _after_transition(run)
    return True


def _after_transition(run: Run) -> None:
    agent = run.agent
    if run.status == RunStatus.RUNNING:
        agent_set_status(agent=agent, status=AgentStatus.RUNNING)
        post_status(run, f"@{agent.handle} is working (run {run.pk}).")
    elif run.is_finished:
        still_busy = Run.objects.filter(agent=agent).active().exclude(pk=run.pk).exists()
        if not still_busy and agent.status != AgentStatus.DISABLED:
            agent_set_status(
                agent=agent,
                status=AgentStatus.ERROR if run.status == RunStatus.FAILED else AgentStatus.IDLE,
            )
        post_status(run, _finished_line(run), usage=run.usage, exit_code=run.exit_code)
        deliveries_settle_ended_run(
            run_id=run.pk, stopped=run.status == RunStatus.CANCELLED, handle=agent.handle
        )
        if run.parent_id is not None:
            _report_to_parent(run)
        dispatcher().agents_dispatch_on_commit([agent.pk])
        _publish_finished(run)
    broadcast_run(run)


RESULT_EXCERPT_CHARS = 500


def _publish_finished(run: Run) -> None:
    """run.finished for notifications and webhooks (apps.notifications), from what is in
    memory: no query."""
    publish_event(
        "run.finished",
        team_id=run.team_id,
        data={
            "run": run.pk,
            "agent": run.agent.handle,
            "status": run.status,
            "thread": run.thread_id,
            "result": run.result_text[:RESULT_EXCERPT_CHARS],
            "error": run.error[:RESULT_EXCERPT_CHARS],
            "created_by": run.created_by_id,
            "url": reverse("run-detail", args=[run.pk]),
        },
    )


def _report_to_parent(run: Run) -> None:
    """A delegated run's outcome goes back to the run that delegated it, always: fan-in never
    depends on a model remembering to report."""
    if run.parent_id is None:
        return  # not a delegated run
    parent = Run.objects.select_related("agent", "thread").filter(pk=run.parent_id).first()
    if parent is None:
        return  # the parent's history was deleted; nobody is left to tell
    if run.status == RunStatus.SUCCEEDED:
        outcome = run.result_text or "(no final text)"
    else:
        outcome = f"{run.get_status_display()}: {run.error or 'no error message'}"
    body = f"Result of run {run.pk} from @{run.agent.handle} ({run.status}):\n\n{outcome}"
    limit = settings.OZWEB_MAX_MESSAGE_BYTES
    if len(body.encode()) > limit:
        body = body.encode()[: limit - 64].decode(errors="ignore") + "\n… [truncated]"
    waiting = Run.objects.filter(pk=run.pk, parent_waiting=True).exists()
    thread = parent.thread or run.thread
    if thread is None:
        return
    messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=body,
                author_agent=run.agent,
                run_id=run.pk,
                hop=run.hop,
                recipients=[parent.agent],
                data={"delegation_result": run.pk, "status": run.status},
                # A delegate call still waiting for this result takes it itself.
                delivered=waiting,
            )
        ],
    )


def _finished_line(run: Run) -> str:
    handle = f"@{run.agent.handle}"
    usage = run.usage or {}
    tokens = ""
    if usage.get("input_tokens") or usage.get("output_tokens"):
        tokens = (
            f" · {usage.get('input_tokens', 0):,} in / {usage.get('output_tokens', 0):,} out tokens"
        )
        if usage.get("cost_usd") is not None:
            tokens += f" · ${usage['cost_usd']:.4f}"
    if run.status == RunStatus.SUCCEEDED:
        return f"{handle} finished run {run.pk}{tokens}."
    if run.status == RunStatus.CANCELLED:
        return f"{handle}'s run {run.pk} was stopped."
    if run.status == RunStatus.TIMED_OUT:
        return f"{handle}'s run {run.pk} timed out after {run.agent.run_timeout_seconds} s."
    detail = f" (exit {run.exit_code})" if run.exit_code is not None else ""
    return f"{handle}'s run {run.pk} failed{detail}: {run.error or 'no error message'}{tokens}"


def run_request_cancel(*, actor: Membership | None, run: Run) -> Run:
    if actor is not None:
        require_role(actor, Role.MEMBER, "Viewers cannot stop runs.", team_id=run.team_id)
    if run.is_finished:
        return run
    if run_transition(
        run=run,
        from_statuses=[RunStatus.QUEUED],
        to=RunStatus.CANCELLED,
        error="Stopped before it started.",
    ):
        return run
    Run.objects.filter(pk=run.pk).update(cancel_requested=True)
    run.cancel_requested = True
    transaction.on_commit(lambda: wakeup.wake_run(run.pk))
    return run


def run_heartbeat(*, run: Run) -> None:
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())


def run_take_over(*, run: Run, seen_heartbeat: datetime | None, worker: str = "") -> bool:
    """Claim a run whose worker went quiet (guarded: of two reconcilers, one wins)."""
    fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if worker:
        fields["worker"] = worker
    return bool(
        Run.objects.filter(pk=run.pk, heartbeat_at=seen_heartbeat, status=run.status).update(
            **fields
        )
    )


def run_set_worker(*, run: Run, worker: str) -> None:
    Run.objects.filter(pk=run.pk).update(worker=worker)
    run.worker = worker
