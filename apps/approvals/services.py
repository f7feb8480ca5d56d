"""Approvals: created by a run's executor when its harness asks, answered by a member (or
expired), each change shown on the approval card in the run's thread.

The answer is one guarded UPDATE (`status = 'pending'` in its WHERE): of two people answering
at the same moment exactly one wins, the other gets a 409. The executor learns of the answer
through `wakeups.notify_run` once the answer has committed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from apps.agents.models import Agent
from apps.approvals import wakeups
from apps.approvals.models import Approval, ApprovalStatus
from apps.core.errors import Conflict, ServiceError
from apps.core.realtime import broadcast_on_commit
from apps.core.registry import publish_event
from apps.harnesses.base import PermissionRequest
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads import events as thread_events
from apps.threads.models import Message, MessageKind, Thread
from apps.threads.services import NewMessage, messages_append

DECISIONS = ("approve", "deny")
MAX_REASON = 2000


def approval_payload(approval: Approval) -> dict[str, Any]:
    """The API's shape of an approval (also the data of `approval.requested`)."""
    return {
        "id": approval.pk,
        "team": approval.team_id,
        "run": approval.run_id,
        "agent": approval.agent_id,
        "thread": approval.thread_id,
        "message": approval.message_id,
        "tool": approval.tool,
        "input": approval.input,
        "status": approval.status,
        "decided_by": approval.decided_by_id,
        "reason": approval.reason,
        "created_at": approval.created_at.isoformat(),
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
    }


def _card_data(approval: Approval, request: PermissionRequest | None = None) -> dict[str, Any]:
    """What the approval card in the feed shows (threads/thread.html, kind "approval")."""
    data = dict(approval.message.data) if approval.message is not None else {}
    if request is not None:
        data.update(
            approval=approval.pk,
            tool=request.tool,
            kind=str(request.kind),
            command=request.command,
            file=request.file,
            diff=request.diff,
            input=request.input,
            expires_at=approval.expires_at.isoformat(),
        )
    decider = approval.decided_by
    data.update(
        status=approval.status,
        reason=approval.reason,
        decided_by=(decider.get_full_name() or decider.get_username()) if decider else None,
        decided_at=approval.decided_at.isoformat() if approval.decided_at else None,
        approve_similar=approval.approve_similar,
    )
    return data


def _card_summary(request: PermissionRequest) -> str:
    if request.command:
        return f"wants to run `{request.command[:500]}`"
    if request.file:
        return f"wants to use {request.tool} on {request.file[:300]}"
    return f"wants to use {request.tool}"


@transaction.atomic
def approval_create(
    *,
    team_id: int,
    run_id: int,
    agent: Agent,
    thread: Thread | None,
    request: PermissionRequest,
    timeout_s: int,
) -> Approval:
    """The harness of `run_id` asks to run `request`: an approval, its card in the thread."""
    now = timezone.now()
    approval = Approval.objects.create(
        team_id=team_id,
        run_id=run_id,
        agent=agent,
        thread=thread,
        tool=request.tool[:200],
        tool_kind=str(request.kind),
        input=request.input,
        request_id=request.request_id[:200],
        expires_at=now + timedelta(seconds=timeout_s),
        similar_key=request.similar_key,
    )
    if thread is not None:
        [message] = messages_append(
            thread=thread,
            items=[
                NewMessage(
                    body=f"@{agent.handle} {_card_summary(request)}: approve or deny.",
                    kind=MessageKind.APPROVAL,
                    author_agent=agent,
                    data=_card_data(approval, request),
                    run_id=run_id,
                )
            ],
        )
        approval.message = message
        approval.save(update_fields=["message"])
    publish_event(
        "approval.requested",
        team_id=team_id,
        data={
            **approval_payload(approval),
            "agent_handle": agent.handle,
            "summary": _card_summary(request),
        },
    )
    return approval


def _refresh_card(approval: Approval) -> None:
    """Write the approval's state into its card and re-render it for every viewer."""
    if approval.message_id is None:
        return
    message = Message.objects.filter(pk=approval.message_id).first()
    if message is None:
        return
    approval.message = message
    Message.objects.filter(pk=message.pk).update(data=_card_data(approval))
    event = {"type": "feed.message_updated", "message": message.pk}
    broadcast_on_commit(thread_events.thread_html_group(message.thread_id), event)
    broadcast_on_commit(thread_events.thread_group(message.thread_id), event)


def _settle(approval: Approval, **fields: Any) -> bool:
    """The guarded UPDATE: True when this call moved it out of pending."""
    won = Approval.objects.filter(pk=approval.pk, status=ApprovalStatus.PENDING).update(**fields)
    if not won:
        return False
    for name, value in fields.items():
        setattr(approval, name, value)
    _refresh_card(approval)
    run_id = approval.run_id
    transaction.on_commit(lambda: wakeups.notify_run(run_id))
    return True


@transaction.atomic
def approval_decide(
    *,
    actor: Membership,
    approval: Approval,
    decision: str,
    reason: str = "",
    all_like_this: bool = False,
) -> Approval:
    """A member approves or denies; `all_like_this` (with approve) approves the run's later
    calls with the same key (the same tool, and program or file) without asking."""
    require_role(actor, Role.MEMBER, "Viewers cannot answer approvals.", team_id=approval.team_id)
    if decision not in DECISIONS:
        raise ServiceError("decision must be approve or deny.", field="decision")
    if not isinstance(reason, str):
        raise ServiceError("reason must be text.", field="reason")
    approve = decision == "approve"
    won = _settle(
        approval,
        status=ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED,
        decided_by=actor.user,
        reason=reason.strip()[:MAX_REASON],
        decided_at=timezone.now(),
        approve_similar=approve and all_like_this,
    )
    if not won:
        current = Approval.objects.values_list("status", flat=True).get(pk=approval.pk)
        raise Conflict(f"This approval was already answered ({current}).", code="already_decided")
    return approval


@transaction.atomic
def approval_expire(*, approval: Approval, reason: str) -> bool:
    """No answer in time (or the run ended): a deny, shown as expired. False when someone
    answered first."""
    return _settle(
        approval, status=ApprovalStatus.EXPIRED, reason=reason[:MAX_REASON],
        decided_at=timezone.now(),
    )  # fmt: skip


def approval_rule_for(*, run_id: int, request: PermissionRequest) -> Approval | None:
    """The approval of this run whose "approve all like this" covers `request`, if any."""
    return (
        Approval.objects.filter(
            run_id=run_id,
            status=ApprovalStatus.APPROVED,
            approve_similar=True,
            similar_key=request.similar_key,
        )
        .select_related("decided_by")
        .order_by("id")
        .first()
    )


def approval_record_by_rule(
    *, rule: Approval, request: PermissionRequest, decided_by: User | None = None
) -> Approval:
    """A call the run's rule approved: kept for the record, with no card of its own."""
    now = timezone.now()
    return Approval.objects.create(
        team_id=rule.team_id,
        run_id=rule.run_id,
        agent_id=rule.agent_id,
        thread_id=rule.thread_id,
        tool=request.tool[:200],
        tool_kind=str(request.kind),
        input=request.input,
        request_id=request.request_id[:200],
        status=ApprovalStatus.APPROVED,
        decided_by=decided_by or rule.decided_by,
        reason=f"Approved by “approve all like this” on approval #{rule.pk}.",
        decided_at=now,
        expires_at=now,
        similar_key=request.similar_key,
        rule=rule,
    )


def approvals_expire_for_ended_run(event: str, team_id: int, data: dict[str, Any]) -> None:
    """A run.finished handler (apps.core.registry): a run that ended without its executor's
    own clean-up (the reconciler failed it after its worker died) leaves no approval waiting."""
    if event != "run.finished" or not isinstance(data.get("run"), int):
        return
    pending = Approval.objects.filter(
        team_id=team_id, run_id=data["run"], status=ApprovalStatus.PENDING
    )
    for approval in pending:
        approval_expire(approval=approval, reason=f"The run ended ({data.get('status')}).")
