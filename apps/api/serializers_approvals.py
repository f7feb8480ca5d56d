"""Serializers of /approvals/ (apps.approvals)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.approvals.models import ApprovalStatus
from apps.approvals.services import approval_payload


class ApprovalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField()
    run = serializers.IntegerField()
    agent = serializers.IntegerField()
    thread = serializers.IntegerField(allow_null=True)
    message = serializers.IntegerField(
        allow_null=True, help_text="The approval card in the thread (none for a call approved "
        "by an earlier “approve all like this for this run”)."
    )  # fmt: skip
    tool = serializers.CharField(help_text="The harness's tool name (Bash, commandExecution, …).")
    input = serializers.DictField(help_text="The tool's input as the harness gave it.")
    status = serializers.ChoiceField(choices=ApprovalStatus.values)
    decided_by = serializers.IntegerField(
        allow_null=True, help_text="The user who answered; null while pending or expired."
    )
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return approval_payload(instance)


class ApprovalDecisionInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "deny"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    all_like_this = serializers.BooleanField(
        required=False,
        default=False,
        help_text="With approve: also approve the run's later calls of the same tool (for a "
        "command, the same program; for an edit, the same file) without asking.",
    )
