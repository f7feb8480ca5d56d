"""/teams/{id}/demo/: start the collaboration demo."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import EnvironmentField
from apps.api.views.common import AuthenticatedRequest, validated
from apps.runs.scenario import scenario_start
from apps.teams.selectors import access_team


class ScenarioApi(APIView):
    """`POST /api/v1/teams/{id}/demo/`: start the collaboration demo (admins)."""

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ScenarioInput"

        harness = serializers.ChoiceField(choices=["offline", "models"], default="offline")
        secrets = EnvironmentField(required=False, write_only=True)

    @extend_schema(
        request=Input,
        responses={
            201: inline_serializer(
                "ScenarioStarted",
                {"thread": serializers.IntegerField(), "message": serializers.IntegerField()},
            )
        },
    )
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data)
        message = scenario_start(
            actor=actor, harness=data["harness"], secrets=data.get("secrets") or None
        )
        return Response({"thread": message.thread_id, "message": message.pk}, status=201)
