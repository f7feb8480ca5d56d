"""/teams/ and /teams/{id}/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import TeamOutput
from apps.api.serializers_gateway import TEAM_BUDGET_FIELDS, TeamBudgetsInput, split_gateway_fields
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.core.patterns import NOT_BLANK
from apps.providers.services import team_set_budgets
from apps.teams import services
from apps.teams.models import Role
from apps.teams.selectors import access_team, team_list_for_user


class TeamListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "TeamCreateInput"

        name = serializers.RegexField(NOT_BLANK, max_length=80, trim_whitespace=False)

    @extend_schema(responses=TeamOutput(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        teams = team_list_for_user(user=request.user)
        roles = dict(request.user.memberships.values_list("team_id", "role"))
        return paginate(request, self, teams, TeamOutput, roles=roles)

    @extend_schema(request=Input, responses={201: TeamOutput})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = validated(self.Input, request.data)
        team = services.team_create(name=data["name"], owner=request.user)
        context = {"roles": {team.pk: Role.OWNER.value}}
        return Response(TeamOutput(team, context=context).data, status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    class Input(TeamBudgetsInput):  # + the gateway's budgets
        class Meta:
            ref_name = "TeamUpdateInput"

        hop_limit = serializers.IntegerField(
            min_value=services.HOP_LIMIT_RANGE[0],
            max_value=services.HOP_LIMIT_RANGE[1],
            help_text="Agent-to-agent steps before a new delivery waits for a human.",
        )

    @extend_schema(responses=TeamOutput)
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        context = {"roles": {membership.team_id: membership.role}}
        return Response(TeamOutput(membership.team, context=context).data)

    @extend_schema(request=Input, responses=TeamOutput)
    def patch(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data, partial=True)
        team = actor.team
        if budgets := split_gateway_fields(data, TEAM_BUDGET_FIELDS):
            team = team_set_budgets(actor=actor, **budgets)
        if "hop_limit" in data:
            team = services.team_set_hop_limit(actor=actor, hop_limit=data["hop_limit"])
        return Response(TeamOutput(team, context={"roles": {team.pk: actor.role}}).data)
