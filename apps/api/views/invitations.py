"""/invitations/ (the signed-in user's, to accept or decline) and /teams/{id}/invitations/
(the team's, for its admins). Inviting is POST /teams/{id}/members/ (members.py)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import InvitationOutput
from apps.api.views.common import AuthenticatedRequest, paginate
from apps.teams import invitations
from apps.teams.models import Role
from apps.teams.selectors import (
    access_invitation,
    access_received_invitation,
    access_team,
    invitation_list,
    invitation_list_for_invitee,
)


class InvitationListApi(APIView):
    @extend_schema(
        responses=InvitationOutput(many=True),
        summary="Invitations addressed to me",
        description="Pending, unexpired invitations to my username or my email, newest first.",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        received = invitation_list_for_invitee(user=request.user)
        return paginate(request, self, received, InvitationOutput)


class InvitationAcceptApi(APIView):
    @extend_schema(
        request=None,
        responses=InvitationOutput,
        summary="Accept an invitation: join its team with its role",
        description="Once: answering again, or after it expired or was revoked, is a 409 "
        "(`code` `not_pending` or `expired`). Someone else's invitation is a 404.",
    )
    def post(self, request: AuthenticatedRequest, invitation_id: int) -> Response:
        invitation = access_received_invitation(user=request.user, invitation_id=invitation_id)
        invitations.invitation_accept(user=request.user, invitation=invitation)
        return Response(InvitationOutput(invitation).data)


class InvitationDeclineApi(APIView):
    @extend_schema(
        request=None,
        responses=InvitationOutput,
        summary="Decline an invitation",
        description="As accept: once, 409 when it is no longer pending, 404 for someone else's.",
    )
    def post(self, request: AuthenticatedRequest, invitation_id: int) -> Response:
        invitation = access_received_invitation(user=request.user, invitation_id=invitation_id)
        invitation = invitations.invitation_decline(user=request.user, invitation=invitation)
        return Response(InvitationOutput(invitation).data)


class TeamInvitationListApi(APIView):
    @extend_schema(
        responses=InvitationOutput(many=True),
        summary="The team's invitations, every status, newest first (owners and admins)",
    )
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
        return paginate(request, self, invitation_list(team=actor.team), InvitationOutput)


class TeamInvitationDetailApi(APIView):
    @extend_schema(
        responses={204: None},
        summary="Revoke a pending invitation (owners and admins)",
        description="The invitation stays in the list as revoked. One already answered, or "
        "expired, is a 409.",
    )
    def delete(self, request: AuthenticatedRequest, team_id: int, invitation_id: int) -> Response:
        actor, invitation = access_invitation(
            user=request.user, team_id=team_id, invitation_id=invitation_id
        )
        invitations.invitation_revoke(actor=actor, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)
