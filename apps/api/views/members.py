"""/teams/{id}/members/ and /teams/{id}/members/{member}/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import MemberOutput
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.teams import services
from apps.teams.models import Role
from apps.teams.selectors import access_member, access_team, membership_list


class TeamMemberListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemberInviteInput"

        who = serializers.CharField(help_text="An existing user's username or email.")
        role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return paginate(request, self, membership_list(team=membership.team), MemberOutput)

    @extend_schema(request=Input, responses={201: MemberOutput})
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data)
        member = services.member_invite(actor=actor, who=data["who"], role=Role(data["role"]))
        return Response(MemberOutput(member).data, status=status.HTTP_201_CREATED)


class TeamMemberDetailApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemberRoleInput"

        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(request=Input, responses=MemberOutput)
    def patch(self, request: AuthenticatedRequest, team_id: int, member_id: int) -> Response:
        actor, member = access_member(user=request.user, team_id=team_id, member_id=member_id)
        data = validated(self.Input, request.data)
        member = services.membership_set_role(
            actor=actor, membership=member, role=Role(data["role"])
        )
        return Response(MemberOutput(member).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, team_id: int, member_id: int) -> Response:
        actor, member = access_member(user=request.user, team_id=team_id, member_id=member_id)
        services.membership_remove(actor=actor, membership=member)
        return Response(status=status.HTTP_204_NO_CONTENT)
