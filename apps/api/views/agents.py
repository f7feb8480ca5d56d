"""/teams/{id}/agents/ and /agents/{id}/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents import services
from apps.agents.selectors import access_agent, agent_list
from apps.api.serializers import AgentInput, AgentOutput
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.teams.selectors import access_team


class AgentListApi(APIView):
    @extend_schema(responses=AgentOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return paginate(request, self, agent_list(team=membership.team), AgentOutput)

    @extend_schema(request=AgentInput, responses={201: AgentOutput})
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(AgentInput, request.data)
        agent = services.agent_create(actor=actor, **data)
        return Response(AgentOutput(agent).data, status=status.HTTP_201_CREATED)


class AgentDetailApi(APIView):
    @extend_schema(responses=AgentOutput)
    def get(self, request: AuthenticatedRequest, agent_id: int) -> Response:
        _, agent = access_agent(user=request.user, agent_id=agent_id)
        return Response(AgentOutput(agent).data)

    @extend_schema(request=AgentInput(partial=True), responses=AgentOutput)
    def patch(self, request: AuthenticatedRequest, agent_id: int) -> Response:
        actor, agent = access_agent(user=request.user, agent_id=agent_id)
        data = validated(AgentInput, request.data, partial=True)
        agent = services.agent_update(actor=actor, agent=agent, **data)
        return Response(AgentOutput(agent).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, agent_id: int) -> Response:
        actor, agent = access_agent(user=request.user, agent_id=agent_id)
        services.agent_delete(actor=actor, agent=agent)
        return Response(status=status.HTTP_204_NO_CONTENT)
