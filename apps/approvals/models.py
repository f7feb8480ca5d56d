"""An approval: one tool call an agent's harness asked permission for, waiting for a human.

The executor of the run (apps.runs.approvals_bridge) creates it when the harness asks, and
answers the harness when a human decides or the agent's `approval_timeout_s` passes (a deny,
shown as `expired`). `request_id` is the harness's own id for the question (Claude Code's
control request id, Codex's JSON-RPC request id), kept for the audit trail.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.agents.models import Agent
from apps.teams.models import Team
from apps.threads.models import Message, Thread


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    EXPIRED = "expired", "Expired"


class Approval(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="approvals")
    # Named by string: approvals sit below runs in the layers.
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="approvals")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="approvals")
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="approvals"
    )
    # The approval card in the thread; none for a call approved by a run's rule.
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tool = models.CharField(max_length=200)
    tool_kind = models.CharField(max_length=20, blank=True)  # apps.harnesses ToolKind
    input = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    # "Approve all like this for this run": later calls of the run with the same `similar_key`
    # are approved without asking (recorded as approvals with `rule` pointing here).
    approve_similar = models.BooleanField(default=False)
    similar_key = models.CharField(max_length=300, blank=True)
    rule = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="applied"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["run", "status"], name="approval_run_status"),
            models.Index(fields=["team", "status"], name="approval_team_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ApprovalStatus.values), name="approval_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"approval #{self.pk} ({self.tool}, {self.status})"
