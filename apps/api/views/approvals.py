"""/approvals/: tool calls waiting for a human, and their answers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers_approvals import ApprovalDecisionInput, ApprovalOutput
from apps.api.views.common import AuthenticatedRequest, id_param, paginate, validated
from apps.approvals.models import ApprovalStatus
from apps.approvals.selectors import access_approval, approval_list_for_user
from apps.approvals.services import approval_decide
from apps.core.errors import ServiceError
from apps.core.ids import ID_SCHEMA


class ApprovalListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("team", ID_SCHEMA),
            OpenApiParameter("run", ID_SCHEMA),
            OpenApiParameter("status", str, enum=ApprovalStatus.values),
        ],
        responses=ApprovalOutput(many=True),
        description="Approvals in your teams, newest first.",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        status_filter = request.query_params.get("status") or None
        if status_filter and status_filter not in ApprovalStatus.values:
            raise ServiceError(
                f"status must be one of {', '.join(ApprovalStatus.values)}.", field="status"
            )
        approvals = approval_list_for_user(
            user=request.user,
            team=id_param(request, "team"),
            run=id_param(request, "run"),
            status=status_filter,
        )
        return paginate(request, self, approvals, ApprovalOutput)


class ApprovalDetailApi(APIView):
    @extend_schema(responses=ApprovalOutput)
    def get(self, request: AuthenticatedRequest, approval_id: int) -> Response:
        _, approval = access_approval(user=request.user, approval_id=approval_id)
        return Response(ApprovalOutput(approval).data)

    @extend_schema(
        request=ApprovalDecisionInput,
        responses=ApprovalOutput,
        description="Approve or deny (members and above). An approval answered already, or "
        "expired, is a 409.",
    )
    def post(self, request: AuthenticatedRequest, approval_id: int) -> Response:
        actor, approval = access_approval(user=request.user, approval_id=approval_id)
        data = validated(ApprovalDecisionInput, request.data)
        approval = approval_decide(
            actor=actor,
            approval=approval,
            decision=data["decision"],
            reason=data.get("reason", ""),
            all_like_this=data.get("all_like_this", False),
        )
        return Response(ApprovalOutput(approval).data)
