"""Runs: creation and dispatch, guarded status moves, event ingestion, message delivery."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.agents.models import Agent, AgentStatus
from apps.agents.services import agent_set_status
from apps.core import sql
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.realtime import broadcast_on_commit
from apps.runs import events, wakeup
from apps.runs.harnesses.base import EventKind, NormalizedEvent
from apps.runs.models import Run, RunEvent, RunStatus
from apps.teams.models import Membership, Role
from apps.threads.models import Delivery, DeliveryState, MessageKind, Thread, ThreadKind
from apps.threads.services import NewMessage, check_body, messages_append

logger = logging.getLogger(__name__)

MAX_PROMPT_BYTES = 256 * 1024
START_RETRY_LIMIT = 2
START_RETRY_BACKOFF_SECONDS = (2, 10)


def direct_thread_for(agent: Agent) -> Thread:
    thread, _ = Thread.objects.get_or_create(
        team_id=agent.team_id,
        kind=ThreadKind.DIRECT,
        agent=agent,
        defaults={"name": f"dm-{agent.handle}"},
    )
    return thread


def _post_status(run: Run, body: str, **data: Any) -> None:
    if run.thread_id is None:
        return
    messages_append(
        thread=run.thread,
        items=[
            NewMessage(
                body=body,
                kind=MessageKind.STATUS,
                author_agent=run.agent,
                data={"run_status": run.status, **data},
                run=run,
            )
        ],
    )


def _broadcast_run(run: Run) -> None:
    broadcast_on_commit(events.run_group(run.pk), lambda: events.run_changed_event(run))


# -- creating and dispatching -------------------------------------------------------------


@transaction.atomic
def run_create(
    *,
    agent: Agent,
    prompt: str,
    thread: Thread | None = None,
    parent: Run | None = None,
    created_by: Any = None,
    deliveries: Iterable[Delivery] = (),
    hop: int = 0,
) -> Run:
    """Queue a run; it is dispatched to a worker once this transaction commits.

    It resumes the agent's latest harness session in the same thread, so the agent keeps
    its context across follow-ups.
    """
    if not prompt or not prompt.strip():
        raise ServiceError("A run needs a prompt.", field="prompt")
    if len(prompt.encode()) > MAX_PROMPT_BYTES:
        raise ServiceError("The prompt is over 256 KiB.", field="prompt", code="too_large")
    thread = thread or direct_thread_for(agent)
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
        parent=parent,
        resumes=resumes,
        prompt=prompt,
        harness=agent.harness,
        created_by=created_by,
        hop=hop,
    )
    run.thread = thread
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(run=run)
    _post_status(run, f"@{agent.handle} picked this up (run {run.pk}).")
    _broadcast_run(run)
    from apps.runs.dispatch import dispatch_on_commit

    dispatch_on_commit(run.pk)
    return run


def run_start(*, actor: Membership, agent: Agent, prompt: str, thread: Thread | None) -> Run:
    """A human starts a run from the API or the agent page."""
    if not actor.has_role(Role.MEMBER):
        raise PermissionDenied("Viewers cannot start runs.")
    if agent.team_id != actor.team_id or (thread and thread.team_id != actor.team_id):
        raise PermissionDenied()
    check_body(prompt)
    return run_create(agent=agent, prompt=prompt, thread=thread, created_by=actor.user)


def _has_capacity(agent: Agent) -> bool:
    return Run.objects.filter(agent=agent).active().count() < agent.max_concurrent_runs


def deliveries_dispatch(*, agent_id: int) -> list[Run]:
    """Hand an agent its pending messages: to its live run in that thread (which takes them
    mid-run or as its next turn), or by waking it with a new run that resumes its session."""
    created: list[Run] = []
    with transaction.atomic():
        agent = Agent.objects.select_for_update().filter(pk=agent_id).first()
        if agent is None or agent.status == AgentStatus.DISABLED:
            return created
        now = timezone.now()
        pending = list(
            Delivery.objects.filter(agent=agent, state=DeliveryState.PENDING, held=False)
            .filter(Q(run__isnull=True) | Q(run__status__in=[RunStatus.FAILED]))
            .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
            .select_related("message__thread", "message__author_user", "message__author_agent")
            .order_by("id")
        )
        by_thread: dict[int, list[Delivery]] = {}
        for delivery in pending:
            if delivery.parent_run_id is not None:
                continue  # a delegation gets a run of its own, below
            by_thread.setdefault(delivery.message.thread_id, []).append(delivery)
        for delegation in (d for d in pending if d.parent_run_id is not None):
            if not _has_capacity(agent):
                break  # dispatched again when one of its runs finishes
            created.append(
                run_create(
                    agent=agent,
                    thread=delegation.message.thread,
                    prompt=delegation.message.data.get("goal") or delegation.message.body,
                    parent=delegation.parent_run,
                    deliveries=[delegation],
                    hop=delegation.message.hop,
                )
            )
        for thread_deliveries in by_thread.values():
            thread = thread_deliveries[0].message.thread
            live = Run.objects.filter(agent=agent, thread=thread).active().order_by("id").first()
            if live is not None:
                wakeup.wake_run(live.pk)  # it takes them itself
                continue
            if not _has_capacity(agent):
                continue  # dispatched again when one of its runs finishes
            created.append(
                run_create(
                    agent=agent,
                    thread=thread,
                    prompt=prompt_from_deliveries(thread_deliveries),
                    deliveries=thread_deliveries,
                    hop=max(d.message.hop for d in thread_deliveries),
                )
            )
    return created


def deliveries_dispatch_on_commit(agent_ids: Iterable[int]) -> None:
    for agent_id in dict.fromkeys(agent_ids):
        transaction.on_commit(lambda agent_id=agent_id: _dispatch_safely(agent_id))


def _dispatch_safely(agent_id: int) -> None:
    try:
        deliveries_dispatch(agent_id=agent_id)
    except Exception:
        # The deliveries stay pending in the database; the reconciler dispatches them again.
        logger.exception("dispatching deliveries for agent %s failed", agent_id)


def prompt_from_deliveries(deliveries: list[Delivery]) -> str:
    parts = []
    for delivery in deliveries:
        message = delivery.message
        author = (
            f"@{message.author_agent.handle}"
            if message.author_agent_id
            else (message.author_user.get_username() if message.author_user_id else "ozweb")
        )
        parts.append(f"{author} wrote in {message.thread.label}:\n{message.body}")
    return "\n\n".join(parts)


def deliveries_take_prompt(*, run: Run) -> list[Delivery]:
    """The deliveries `run` was created with (their text is its prompt), marked delivered.
    Messages that arrived since are not among them: the run takes those as input."""
    with transaction.atomic():
        taken = list(
            Delivery.objects.select_for_update(of=("self",))
            .filter(run=run, state=DeliveryState.PENDING, held=False)
            .select_related("message")
            .order_by("id")
        )
        deliveries_set_state(deliveries=taken, state=DeliveryState.DELIVERED, run=run)
    return taken


def deliveries_take(*, run: Run) -> list[Delivery]:
    """Pending messages for this run's agent in its thread, marked delivered to this run."""
    pending = (
        Delivery.objects.filter(agent_id=run.agent_id, message__thread_id=run.thread_id)
        .filter(state=DeliveryState.PENDING, held=False)
        .filter(Q(parent_run__isnull=True) | Q(run=run))
        .filter(Q(run__isnull=True) | Q(run=run))
    )
    # Executors look often; a plain read first keeps them from taking the write lock (SQLite
    # takes it at BEGIN) when there is nothing to take.
    if not pending.exists():
        return []
    with transaction.atomic():
        taken = list(
            pending.select_for_update(of=("self",))
            .select_related("message__thread", "message__author_user", "message__author_agent")
            .order_by("id")
        )
        deliveries_set_state(deliveries=taken, state=DeliveryState.DELIVERED, run=run)
    return taken


def deliveries_claim(*, run: Run, deliveries: Iterable[Delivery]) -> list[Delivery]:
    """Of these deliveries (handed over in memory by the sender, message loaded), those that
    were still pending for this run's agent in its thread, now delivered to this run. Each is
    claimed by a guarded UPDATE, so a concurrent `deliveries_take` never delivers one twice."""
    from apps.threads.services import broadcast_delivery

    claimed: list[Delivery] = []
    now = timezone.now()
    with transaction.atomic():
        for delivery in deliveries:
            if (
                delivery.agent_id != run.agent_id
                or delivery.message.thread_id != run.thread_id
                or delivery.parent_run_id is not None
            ):
                continue
            won = sql.execute(
                "UPDATE {Delivery} SET {Delivery.state} = %s, {Delivery.run} = %s, "
                "{Delivery.reason} = '', {Delivery.updated_at} = %s WHERE {Delivery.id} = %s "
                "AND {Delivery.state} = %s AND {Delivery.held} = %s AND {Delivery.run} IS NULL",
                [
                    DeliveryState.DELIVERED,
                    run.pk,
                    sql.value(Delivery, "updated_at", now),
                    delivery.pk,
                    DeliveryState.PENDING,
                    False,
                ],
                Delivery=Delivery,
            )
            if won:
                delivery.state, delivery.run, delivery.reason = DeliveryState.DELIVERED, run, ""
                delivery.updated_at = now
                broadcast_delivery(delivery)
                claimed.append(delivery)
    return claimed


def deliveries_set_state(
    *, deliveries: list[Delivery], state: DeliveryState, run: Run | None = None, reason: str = ""
) -> None:
    if not deliveries:
        return
    fields: dict[str, Any] = {"state": state, "reason": reason[:500], "updated_at": timezone.now()}
    if run is not None:
        fields["run"] = run
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(**fields)
    from apps.threads.services import broadcast_delivery

    for delivery in deliveries:
        for name, value in fields.items():
            setattr(delivery, name, value)
        broadcast_delivery(delivery)


def deliveries_give_back(*, deliveries: list[Delivery], reason: str) -> None:
    """Deliveries a run took but could not hand its process (it had ended): pending again and
    no longer the run's, so the dispatch at its end, or the reconciler, gets them to the
    agent."""
    if not deliveries:
        return
    now = timezone.now()
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        state=DeliveryState.PENDING, run=None, reason=reason[:500], updated_at=now
    )
    from apps.threads.services import broadcast_delivery

    for delivery in deliveries:
        delivery.state, delivery.run, delivery.reason = DeliveryState.PENDING, None, reason[:500]
        delivery.updated_at = now
        broadcast_delivery(delivery)


def deliveries_release_failed_start(*, run: Run, reason: str) -> None:
    """A run that never started gives its messages back: retried with backoff, then failed."""
    with transaction.atomic():
        for delivery in (
            Delivery.objects.select_for_update(of=("self",))
            .filter(run=run, state__in=[DeliveryState.PENDING, DeliveryState.DELIVERED])
            .select_related("message")
        ):
            delivery.attempts += 1
            if delivery.attempts >= START_RETRY_LIMIT:
                deliveries_set_state(
                    deliveries=[delivery],
                    state=DeliveryState.FAILED,
                    reason=f"@{run.agent.handle} could not start after "
                    f"{delivery.attempts} attempts: {reason}",
                )
                Delivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts)
            else:
                backoff = START_RETRY_BACKOFF_SECONDS[
                    min(delivery.attempts - 1, len(START_RETRY_BACKOFF_SECONDS) - 1)
                ]
                Delivery.objects.filter(pk=delivery.pk).update(
                    attempts=delivery.attempts,
                    state=DeliveryState.PENDING,
                    run=None,
                    retry_at=timezone.now() + timedelta(seconds=backoff),
                    reason=f"start failed ({reason[:200]}); retrying in {backoff} s",
                )


# -- status moves ---------------------------------------------------------------------------


def run_transition(
    *, run: Run, from_statuses: Iterable[RunStatus], to: RunStatus, **fields: Any
) -> bool:
    """Move a run's status only if it is still in one of `from_statuses` (one UPDATE)."""
    now = timezone.now()
    if to == RunStatus.RUNNING:
        fields.setdefault("started_at", now)
    if to in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT):
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
        _post_status(run, f"@{agent.handle} is working (run {run.pk}).")
    elif run.is_finished:
        still_busy = Run.objects.filter(agent=agent).active().exclude(pk=run.pk).exists()
        if not still_busy and agent.status != AgentStatus.DISABLED:
            agent_set_status(
                agent=agent,
                status=AgentStatus.ERROR if run.status == RunStatus.FAILED else AgentStatus.IDLE,
            )
        _post_status(run, _finished_line(run), usage=run.usage, exit_code=run.exit_code)
        if run.parent_id is not None:
            _report_to_parent(run)
        deliveries_dispatch_on_commit([agent.pk])
    _broadcast_run(run)


def _report_to_parent(run: Run) -> None:
    """A delegated run's outcome goes back to the run that delegated it, always: fan-in never
    depends on a model remembering to report."""
    parent = Run.objects.select_related("agent", "thread").get(pk=run.parent_id)
    if run.status == RunStatus.SUCCEEDED:
        outcome = run.result_text or "(no final text)"
    else:
        outcome = f"{run.get_status_display()}: {run.error or 'no error message'}"
    body = f"Result of run {run.pk} from @{run.agent.handle} ({run.status}):\n\n{outcome}"
    limit = settings.OZWEB_MAX_MESSAGE_BYTES
    if len(body.encode()) > limit:
        body = body.encode()[: limit - 64].decode(errors="ignore") + "\n… [truncated]"
    waiting = Run.objects.filter(pk=run.pk, parent_waiting=True).exists()
    messages_append(
        thread=parent.thread or run.thread,
        items=[
            NewMessage(
                body=body,
                author_agent=run.agent,
                run=run,
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
        if run.team_id != actor.team_id:
            raise PermissionDenied()
        if not actor.has_role(Role.MEMBER):
            raise PermissionDenied("Viewers cannot stop runs.")
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


def run_send_message(*, actor: Membership, run: Run, body: str) -> Any:
    """A human steers a run or follows up on it: a message in its thread addressed to it."""
    from apps.threads.services import message_post

    if run.team_id != actor.team_id:
        raise PermissionDenied()
    thread = run.thread or direct_thread_for(run.agent)
    return message_post(actor=actor, thread=thread, body=body, extra_recipients=[run.agent])


# -- event ingestion ------------------------------------------------------------------------

_MESSAGE_KINDS = {
    EventKind.ASSISTANT_TEXT: MessageKind.TEXT,
    EventKind.TOOL_CALL: MessageKind.TOOL_CALL,
    EventKind.TOOL_RESULT: MessageKind.TOOL_RESULT,
    EventKind.ERROR: MessageKind.ERROR,
}


def mask_secrets(value: Any, secrets: list[str]) -> Any:
    """Make harness output safe to store: every secret value found in `value` (recursively)
    is masked, and NUL characters (which PostgreSQL text cannot hold) become U+FFFD."""
    if isinstance(value, str):
        value = value.replace("\x00", "\ufffd")
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, "••••••")
        return value
    if isinstance(value, dict):
        return {k: mask_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, secrets) for v in value]
    return value


def _message_for(event: NormalizedEvent, run: Run) -> NewMessage | None:
    kind = _MESSAGE_KINDS.get(event.kind)
    if kind is None:
        return None
    data = event.data
    if event.kind == EventKind.ASSISTANT_TEXT:
        body, extra = data.get("text", ""), {}
        if not body.strip():
            return None
    elif event.kind == EventKind.TOOL_CALL:
        body = data.get("command") or data.get("name", "tool")
        extra = {k: data.get(k) for k in ("call_id", "name", "kind", "input", "command")}
    elif event.kind == EventKind.TOOL_RESULT:
        body = str(data.get("output", ""))
        extra = {k: data.get(k) for k in ("call_id", "status", "exit_code")}
    else:
        body = data.get("message", "error")
        extra = {k: data.get(k) for k in ("http_status", "fatal")}
    limit = settings.OZWEB_MAX_MESSAGE_BYTES
    if len(body.encode()) > limit:
        body = body.encode()[: limit - 64].decode(errors="ignore") + "\n… [truncated]"
    return NewMessage(body=body, kind=kind, author_agent=run.agent, data=extra, run=run)


def _merge_usage(total: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    merged = dict(total)
    cumulative = bool(data.get("cumulative"))
    for key in ("input_tokens", "output_tokens", "cached_input_tokens"):
        value = data.get(key)
        if isinstance(value, int | float):
            merged[key] = int(value) if cumulative else int(merged.get(key, 0)) + int(value)
    cost = data.get("cost_usd")
    if isinstance(cost, int | float):
        merged["cost_usd"] = (
            float(cost) if cumulative else float(merged.get("cost_usd") or 0) + cost
        )
    return merged


@transaction.atomic
def run_ingest(
    *,
    run: Run,
    events_batch: list[NormalizedEvent],
    secrets: list[str],
    stdout_lines: int | None = None,
) -> None:
    """Persist a batch of harness events in one transaction; the feed gets one broadcast."""
    if not events_batch:
        return
    first_seq = run.last_event_seq + 1
    masked = [
        NormalizedEvent(
            kind=e.kind,
            data=mask_secrets(e.data, secrets),
            raw=None,
            session_id=e.session_id,
        )
        for e in events_batch
    ]
    RunEvent.objects.bulk_create(
        [
            RunEvent(run=run, seq=first_seq + i, kind=str(e.kind), data=e.data)
            for i, e in enumerate(masked)
        ]
    )
    # One executor holds a run, so it alone appends its events.
    run.last_event_seq = first_seq + len(masked) - 1
    updates: dict[str, Any] = {"last_event_seq": run.last_event_seq}
    if stdout_lines is not None:
        run.stdout_lines = updates["stdout_lines"] = stdout_lines
    for event in masked:
        if event.session_id and not run.session_id:
            run.session_id = updates["session_id"] = event.session_id[:200]
        if event.kind == EventKind.USAGE:
            run.usage = updates["usage"] = _merge_usage(run.usage or {}, event.data)
        elif event.kind == EventKind.TURN_FINISHED and event.data.get("result_text"):
            run.result_text = updates["result_text"] = event.data["result_text"]
        elif event.kind == EventKind.ERROR and event.data.get("fatal"):
            run.error = updates["error"] = str(event.data.get("message", ""))[:2000]
    Run.objects.filter(pk=run.pk).update(**updates)
    items = [m for m in (_message_for(e, run) for e in masked) if m is not None]
    if items and run.thread_id:
        messages_append(thread=run.thread, items=items)


def run_heartbeat(*, run: Run) -> None:
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
