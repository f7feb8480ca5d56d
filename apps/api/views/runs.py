"""/runs/: list and start runs; a run, its cancel, its messages and its events."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents.selectors import access_agent
from apps.api.serializers import MessageOutput, RunEventOutput, RunOutput
from apps.api.views.common import (
    AuthenticatedRequest,
    id_param,
    int_param,
    paginate,
    seq_window_parameters,
    validated,
)
from apps.core.errors import ServiceError
from apps.core.ids import ID_SCHEMA, id_field
from apps.core.patterns import NOT_BLANK
from apps.runs.creation import run_start
from apps.runs.models import RunStatus
from apps.runs.routing import run_send_message
from apps.runs.selectors import access_run, run_events, run_list_for_user
from apps.runs.transitions import run_request_cancel
from apps.threads.selectors import thread_get


class RunListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "RunCreateInput"

        agent = id_field()
        prompt = serializers.RegexField(
            NOT_BLANK, trim_whitespace=False, error_messages={"invalid": "A run needs a prompt."}
        )
        thread = id_field(required=False, allow_null=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("thread", ID_SCHEMA),
            OpenApiParameter("agent", ID_SCHEMA),
            OpenApiParameter("status", str, enum=RunStatus.values),
        ],
        responses=RunOutput(many=True),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        status_filter = request.query_params.get("status") or None
        if status_filter and status_filter not in RunStatus.values:
            raise ServiceError(
                f"status must be one of {', '.join(RunStatus.values)}.", field="status"
            )
        runs = run_list_for_user(
            user=request.user,
            thread=id_param(request, "thread"),
            agent=id_param(request, "agent"),
            status=status_filter,
        )
        return paginate(request, self, runs, RunOutput)

    @extend_schema(request=Input, responses={201: RunOutput})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = validated(self.Input, request.data)
        actor, agent = access_agent(user=request.user, agent_id=data["agent"])
        thread = None
        if data.get("thread"):
            thread = thread_get(team=actor.team, thread_id=data["thread"])
        run = run_start(actor=actor, agent=agent, prompt=data["prompt"], thread=thread)
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    @extend_schema(responses=RunOutput)
    def get(self, request: AuthenticatedRequest, run_id: int) -> Response:
        _, run = access_run(user=request.user, run_id=run_id)
        return Response(RunOutput(run).data)


class RunCancelApi(APIView):
    @extend_schema(request=None, responses={202: RunOutput})
    def post(self, request: AuthenticatedRequest, run_id: int) -> Response:
        actor, run = access_run(user=request.user, run_id=run_id)
        run = run_request_cancel(actor=actor, run=run)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RunMessageApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "RunMessageInput"

        body = serializers.RegexField(
            NOT_BLANK, trim_whitespace=False, error_messages={"invalid": "Write something first."}
        )

    @extend_schema(request=Input, responses={201: MessageOutput})
    def post(self, request: AuthenticatedRequest, run_id: int) -> Response:
        actor, run = access_run(user=request.user, run_id=run_id)
        data = validated(self.Input, request.data)
        message = run_send_message(actor=actor, run=run, body=data["body"])
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)


MAX_EVENTS = 2000


class RunEventListApi(APIView):
    pagination_class = None  # a plain list, by `since`

    @extend_schema(
        parameters=seq_window_parameters(rows="events", max_limit=MAX_EVENTS, default=500),
        responses=RunEventOutput(many=True),
    )
    def get(self, request: AuthenticatedRequest, run_id: int) -> Response:
        _, run = access_run(user=request.user, run_id=run_id)
        events = run_events(
            run=run,
            since=int_param(request, "since", default=0, low=0),
            limit=int_param(request, "limit", default=500, low=1, high=MAX_EVENTS),
        )
        return Response(RunEventOutput(events, many=True).data)
