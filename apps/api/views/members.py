"""/teams/{id}/members/ (POST invites) and /teams/{id}/members/{member}/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import InvitationOutput, InvitationSentOutput, MemberOutput
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.teams import services
from apps.teams.invitations import invitation_create
from apps.teams.models import INVITEE_MAX_LENGTH, Role
from apps.teams.selectors import access_member, access_team, membership_list


class TeamMemberListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemberInviteInput"

        who = serializers.CharField(
            max_length=INVITEE_MAX_LENGTH, help_text="The invitee's username or email address."
        )
        role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return paginate(request, self, membership_list(team=membership.team), MemberOutput)

    @extend_schema(
        request=Input,
        responses={202: InvitationSentOutput},
        summary="Invite someone to the team (owners and admins)",
        description=(
            "Creates an invitation for `who` (or renews their pending one); they join when "
            "they accept it (`POST /invitations/{id}/accept/`). The answer is the same 202 "
            "whether or not a user with that username or email exists, and it never shows "
            "their email. Only owners may invite with the owner role; someone already in the "
            "team is a 400."
        ),
    )
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data)
        issued = invitation_create(actor=actor, who=data["who"], role=Role(data["role"]))
        body = {
            "invitation": InvitationOutput(issued.invitation).data,
            "accept_url": request.build_absolute_uri(issued.link_path),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TeamMemberDetailApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemberRoleInput"

        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(request=Input, responses=MemberOutput)
    def patch(self, request: AuthenticatedRequest, team_id: int, member_id: int) -> Response:
        actor, member = access_member(user=request.user, team_id=team_id, member_id=member_id)
        data = validated(self.Input, request.data, partial=True)
        if "role" in data:
            member = services.membership_set_role(
                actor=actor, membership=member, role=Role(data["role"])
            )
        return Response(MemberOutput(member).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, team_id: int, member_id: int) -> Response:
        actor, member = access_member(user=request.user, team_id=team_id, member_id=member_id)
        services.membership_remove(actor=actor, membership=member)
        return Response(status=status.HTTP_204_NO_CONTENT)
