"""The executor's side of approvals: a run's harness asks before a tool call, a human answers.

`RunApprovals` lives as long as the run's executor. For each `PermissionRequest` the adapter
reads from the harness it either answers at once (policy "never"; reads under "ask_writes";
a call covered by an earlier "approve all like this for this run") or creates an approval
(apps.approvals) and keeps the harness waiting. It looks at its pending approvals when told
an answer came (apps.approvals.wakeups, across processes) and once a second, answers the
harness on stdin, and expires those past the agent's `approval_timeout_s` (a deny). When the
run ends, what is still pending expires.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from django.utils import timezone

from apps.approvals import services, wakeups
from apps.approvals.models import Approval, ApprovalStatus
from apps.core.db import connections_done
from apps.harnesses.base import Adapter, PermissionRequest, ToolKind
from apps.runs.models import Run

logger = logging.getLogger(__name__)

# Under "ask_writes" these run without asking: they only read.
READ_KINDS = frozenset({ToolKind.READ, ToolKind.SEARCH})


class RunApprovals:
    def __init__(
        self,
        run: Run,
        *,
        adapter: Callable[[], Adapter],
        write: Callable[[bytes], None],
        wake: Callable[[], None],
        mask_text: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.run = run
        self.mask_text = mask_text  # the run's secrets masked (what is stored and shown)
        self.policy = run.agent.approval_policy
        self.adapter = adapter
        self.write = write
        self.subscription = wakeups.Subscription(run.pk, wake)
        self.pending: dict[int, PermissionRequest] = {}

    def __enter__(self) -> RunApprovals:
        if self.policy != "never":
            self.subscription.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.policy == "never":
            return
        self.subscription.__exit__(exc_type, exc, traceback)
        try:
            # Also any a worker that held the run before this one left open.
            open_ones = Approval.objects.filter(run_id=self.run.pk, status=ApprovalStatus.PENDING)
            for approval in open_ones:
                services.approval_expire(
                    approval=approval, reason="The run ended before an answer came."
                )
        except Exception:
            logger.exception("run %s: expiring its open approvals failed", self.run.pk)
        finally:
            self.pending.clear()
            connections_done()

    def answer(self, request: PermissionRequest, *, allow: bool, message: str = "") -> None:
        data = self.adapter().answer_permission(request, allow=allow, message=message)
        if data:
            with contextlib.suppress(OSError):  # the process is gone: nothing to answer
                self.write(data)

    def handle(self, requests: list[PermissionRequest]) -> None:
        """New questions from the harness."""
        try:
            for request in requests:
                self.ask(request)
        finally:
            connections_done()

    def ask(self, request: PermissionRequest) -> None:
        run, agent = self.run, self.run.agent
        if self.policy == "never" or (self.policy == "ask_writes" and request.kind in READ_KINDS):
            self.answer(request, allow=True)
            return
        # What is stored and shown is masked; the harness is answered with what it asked.
        shown = dataclasses.replace(
            request,
            input=self.mask(request.input),
            command=self.mask(request.command),
            file=self.mask(request.file),
            diff=self.mask(request.diff),
        )
        rule = services.approval_rule_for(run_id=run.pk, request=shown)
        if rule is not None:
            services.approval_record_by_rule(rule=rule, request=shown)
            self.answer(request, allow=True)
            return
        approval = services.approval_create(
            team_id=run.team_id,
            run_id=run.pk,
            agent=agent,
            thread=run.thread,
            request=shown,
            timeout_s=agent.approval_timeout_s,
        )
        self.pending[approval.pk] = request

    def mask(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value

    def check(self) -> None:
        """Answer the harness for every pending approval that was decided or is overdue."""
        if not self.pending:
            return
        try:
            now = timezone.now()
            for approval in Approval.objects.filter(pk__in=list(self.pending)).select_related(
                "decided_by"
            ):
                if approval.status == ApprovalStatus.PENDING and approval.expires_at <= now:
                    timeout = self.run.agent.approval_timeout_s
                    reason = f"No answer within {timeout} s: denied."
                    if not services.approval_expire(approval=approval, reason=reason):
                        approval.refresh_from_db()
                if approval.status == ApprovalStatus.PENDING:
                    continue
                request = self.pending.pop(approval.pk)
                self.answer(
                    request,
                    allow=approval.status == ApprovalStatus.APPROVED,
                    message=denial_message(approval),
                )
        finally:
            connections_done()


def denial_message(approval: Approval) -> str:
    """What the agent reads as the tool's result when it may not run it."""
    if approval.status == ApprovalStatus.EXPIRED:
        return f"Denied by ozweb: {approval.reason}"
    who = approval.decided_by.get_username() if approval.decided_by else "a human"
    because = f" Reason: {approval.reason}" if approval.reason else ""
    return f"Denied by {who} in ozweb.{because}"
