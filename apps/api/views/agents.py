"""/teams/{id}/agents/ and /agents/{id}/."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents import services
from apps.agents.selectors import access_agent, agent_list
from apps.api.serializers import AgentInput, AgentOutput
from apps.api.serializers_gateway import AGENT_GATEWAY_FIELDS, split_gateway_fields
from apps.api.views.common import AuthenticatedRequest, bool_param, paginate, validated
from apps.providers.services import agent_set_gateway
from apps.runs.archiving import agent_archive
from apps.teams.selectors import access_team


class AgentListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "archived", bool, description="List the archived agents instead (their history)."
            )
        ],
        responses=AgentOutput(many=True),
    )
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        agents = agent_list(team=membership.team, archived=bool_param(request, "archived"))
        return paginate(request, self, agents, AgentOutput)

    @extend_schema(request=AgentInput, responses={201: AgentOutput})
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(AgentInput, request.data)
        gateway = split_gateway_fields(data, AGENT_GATEWAY_FIELDS)
        with transaction.atomic():
            agent = services.agent_create(actor=actor, **data)
            if gateway:
                agent = agent_set_gateway(actor=actor, agent=agent, **gateway)
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
        gateway = split_gateway_fields(data, AGENT_GATEWAY_FIELDS)
        with transaction.atomic():
            agent = services.agent_update(actor=actor, agent=agent, **data)
            if gateway:
                agent = agent_set_gateway(actor=actor, agent=agent, **gateway)
        return Response(AgentOutput(agent).data)

    @extend_schema(
        description="Archives the agent: its live runs are stopped first, it leaves the "
        "team's lists and takes no more messages, its handle is free again, and its runs, "
        "messages and artifacts stay (GET still answers, with `archived: true`). "
        "Archiving an archived agent changes nothing.",
        responses={204: None},
    )
    def delete(self, request: AuthenticatedRequest, agent_id: int) -> Response:
        actor, agent = access_agent(user=request.user, agent_id=agent_id)
        agent_archive(actor=actor, agent=agent)
        return Response(status=status.HTTP_204_NO_CONTENT)
