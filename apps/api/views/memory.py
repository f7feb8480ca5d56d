"""/teams/{id}/memory/: the team's memory notes by key."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import MemoryOutput
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.artifacts import services
from apps.artifacts.models import MEMORY_KEY_HELP, MEMORY_KEY_INPUT
from apps.artifacts.selectors import memory_get, memory_list
from apps.teams.selectors import access_team


class TeamMemoryListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("prefix", str, description="Only keys starting with it.")],
        responses=MemoryOutput(many=True),
    )
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        notes = memory_list(team=membership.team, prefix=request.query_params.get("prefix", ""))
        return paginate(request, self, notes, MemoryOutput)


KEY = OpenApiParameter(
    "key",
    {"type": "string", "pattern": MEMORY_KEY_INPUT},
    OpenApiParameter.PATH,
    description=MEMORY_KEY_HELP,
)


class TeamMemoryDetailApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemoryPutInput"

        value = serializers.CharField(allow_blank=True, trim_whitespace=False)

    @extend_schema(parameters=[KEY], responses=MemoryOutput)
    def get(self, request: AuthenticatedRequest, team_id: int, key: str) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return Response(MemoryOutput(memory_get(team=membership.team, key=key)).data)

    @extend_schema(parameters=[KEY], request=Input, responses=MemoryOutput)
    def put(self, request: AuthenticatedRequest, team_id: int, key: str) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data)
        note = services.memory_set_as_human(actor=actor, key=key, value=data["value"])
        return Response(MemoryOutput(note).data)

    @extend_schema(parameters=[KEY], responses={204: None})
    def delete(self, request: AuthenticatedRequest, team_id: int, key: str) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        memory_get(team=actor.team, key=key)  # a missing key is a 404
        services.memory_delete(actor=actor, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)
