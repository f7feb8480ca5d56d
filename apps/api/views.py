"""The public REST API, /api/v1/. Thin: parse input, call a selector or service, serialise."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents import selectors as agent_selectors
from apps.agents import services as agent_services
from apps.agents.models import Agent
from apps.api.serializers import (
    AgentInput,
    AgentOutput,
    MemberOutput,
    MessageOutput,
    RunEventOutput,
    RunOutput,
    TeamOutput,
    ThreadOutput,
)
from apps.core.errors import NotFound, ServiceError
from apps.runs import selectors as run_selectors
from apps.runs import services as run_services
from apps.runs.models import RunStatus
from apps.teams import selectors as team_selectors
from apps.teams import services as team_services
from apps.teams.models import Membership, Role
from apps.threads import selectors as thread_selectors
from apps.threads import services as thread_services
from apps.threads.models import Thread

MAX_PAGE = 200


def _paginate(
    request: Request, view: APIView, queryset: Any, serializer: Any, **ctx: Any
) -> Response:
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=ctx).data)


def _membership_for_agent(user: AbstractBaseUser, agent_id: int) -> tuple[Membership, Agent]:
    agent = Agent.objects.filter(pk=agent_id, team__memberships__user=user).first()
    if agent is None:
        raise NotFound()
    return team_selectors.membership_get(user=user, team_id=agent.team_id), agent


def _membership_for_thread(user: AbstractBaseUser, thread_id: int) -> tuple[Membership, Thread]:
    thread = thread_selectors.thread_get_for_user(user=user, thread_id=thread_id)
    return team_selectors.membership_get(user=user, team_id=thread.team_id), thread


def _validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TeamListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "TeamCreateInput"

        name = serializers.CharField(max_length=80)

    @extend_schema(responses=TeamOutput(many=True))
    def get(self, request: Request) -> Response:
        teams = team_selectors.team_list_for_user(user=request.user)
        roles = dict(request.user.memberships.values_list("team_id", "role"))
        return _paginate(request, self, teams, TeamOutput, roles=roles)

    @extend_schema(request=Input, responses={201: TeamOutput})
    def post(self, request: Request) -> Response:
        data = _validated(self.Input, request.data)
        team = team_services.team_create(name=data["name"], owner=request.user)
        context = {"roles": {team.pk: Role.OWNER.value}}
        return Response(TeamOutput(team, context=context).data, status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    @extend_schema(responses=TeamOutput)
    def get(self, request: Request, team_id: int) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        context = {"roles": {membership.team_id: membership.role}}
        return Response(TeamOutput(membership.team, context=context).data)


class TeamMemberListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemberInviteInput"

        who = serializers.CharField(help_text="An existing user's username or email.")
        role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: Request, team_id: int) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        return _paginate(
            request, self, team_selectors.membership_list(team=membership.team), MemberOutput
        )

    @extend_schema(request=Input, responses={201: MemberOutput})
    def post(self, request: Request, team_id: int) -> Response:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        data = _validated(self.Input, request.data)
        member = team_services.member_invite(actor=actor, who=data["who"], role=Role(data["role"]))
        return Response(MemberOutput(member).data, status=status.HTTP_201_CREATED)


class TeamMemberDetailApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemberRoleInput"

        role = serializers.ChoiceField(choices=Role.choices)

    def _get(self, request: Request, team_id: int, member_id: int) -> tuple[Membership, Membership]:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        member = (
            Membership.objects.select_related("user").filter(team_id=team_id, pk=member_id).first()
        )
        if member is None:
            raise NotFound()
        return actor, member

    @extend_schema(request=Input, responses=MemberOutput)
    def patch(self, request: Request, team_id: int, member_id: int) -> Response:
        actor, member = self._get(request, team_id, member_id)
        data = _validated(self.Input, request.data)
        member = team_services.membership_set_role(
            actor=actor, membership=member, role=Role(data["role"])
        )
        return Response(MemberOutput(member).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, team_id: int, member_id: int) -> Response:
        actor, member = self._get(request, team_id, member_id)
        team_services.membership_remove(actor=actor, membership=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentListApi(APIView):
    @extend_schema(responses=AgentOutput(many=True))
    def get(self, request: Request, team_id: int) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        return _paginate(
            request, self, agent_selectors.agent_list(team=membership.team), AgentOutput
        )

    @extend_schema(request=AgentInput, responses={201: AgentOutput})
    def post(self, request: Request, team_id: int) -> Response:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        data = _validated(AgentInput, request.data)
        agent = agent_services.agent_create(actor=actor, **data)
        return Response(AgentOutput(agent).data, status=status.HTTP_201_CREATED)


class AgentDetailApi(APIView):
    @extend_schema(responses=AgentOutput)
    def get(self, request: Request, agent_id: int) -> Response:
        _, agent = _membership_for_agent(request.user, agent_id)
        return Response(AgentOutput(agent).data)

    @extend_schema(request=AgentInput(partial=True), responses=AgentOutput)
    def patch(self, request: Request, agent_id: int) -> Response:
        actor, agent = _membership_for_agent(request.user, agent_id)
        data = _validated(AgentInput, request.data, partial=True)
        agent = agent_services.agent_update(actor=actor, agent=agent, **data)
        return Response(AgentOutput(agent).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, agent_id: int) -> Response:
        actor, agent = _membership_for_agent(request.user, agent_id)
        agent_services.agent_delete(actor=actor, agent=agent)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ThreadListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ThreadCreateInput"

        kind = serializers.ChoiceField(choices=["channel", "direct"], default="channel")
        name = serializers.CharField(max_length=81, required=False)
        topic = serializers.CharField(max_length=250, required=False, allow_blank=True, default="")
        agent = serializers.IntegerField(required=False, help_text="For a direct thread.")

    @extend_schema(responses=ThreadOutput(many=True))
    def get(self, request: Request, team_id: int) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        threads = thread_selectors.thread_list(team=membership.team, user=request.user)
        return _paginate(request, self, threads, ThreadOutput)

    @extend_schema(request=Input, responses={201: ThreadOutput})
    def post(self, request: Request, team_id: int) -> Response:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        data = _validated(self.Input, request.data)
        if data["kind"] == "direct":
            if "agent" not in data:
                raise ServiceError("A direct thread needs an agent.", field="agent")
            agent = agent_selectors.agent_get(team=actor.team, agent_id=data["agent"])
            thread = thread_services.thread_direct_get_or_create(actor=actor, agent=agent)
        else:
            if not data.get("name"):
                raise ServiceError("A channel needs a name.", field="name")
            thread = thread_services.thread_create(
                actor=actor, name=data["name"], topic=data["topic"]
            )
        return Response(ThreadOutput(thread).data, status=status.HTTP_201_CREATED)


class ThreadDetailApi(APIView):
    @extend_schema(responses=ThreadOutput)
    def get(self, request: Request, thread_id: int) -> Response:
        _, thread = _membership_for_thread(request.user, thread_id)
        return Response(ThreadOutput(thread).data)


class ThreadMessageListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MessageCreateInput"

        body = serializers.CharField(allow_blank=True, trim_whitespace=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("since", int, description="Only messages with a larger seq."),
            OpenApiParameter("limit", int, description=f"At most this many (1–{MAX_PAGE}, 50)."),
        ],
        responses=inline_serializer(
            "MessagePage",
            {
                "results": MessageOutput(many=True),
                "next": serializers.URLField(allow_null=True),
                "last_seq": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request, thread_id: int) -> Response:
        _, thread = _membership_for_thread(request.user, thread_id)
        since = _int_param(request, "since", default=0, low=0)
        limit = _int_param(request, "limit", default=50, low=1, high=MAX_PAGE)
        messages = thread_selectors.messages_after(thread=thread, since=since, limit=limit)
        next_url = None
        if len(messages) == limit:
            path = reverse("api:thread-messages", kwargs={"thread_id": thread.pk})
            next_url = request.build_absolute_uri(f"{path}?since={messages[-1].seq}&limit={limit}")
        return Response(
            {
                "results": MessageOutput(messages, many=True).data,
                "next": next_url,
                "last_seq": thread.last_seq,
            }
        )

    @extend_schema(request=Input, responses={201: MessageOutput})
    def post(self, request: Request, thread_id: int) -> Response:
        actor, thread = _membership_for_thread(request.user, thread_id)
        data = _validated(self.Input, request.data)
        with transaction.atomic():
            message = thread_services.message_post(actor=actor, thread=thread, body=data["body"])
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)


def _int_param(
    request: Request, name: str, *, default: int, low: int, high: int | None = None
) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(f"{name} must be a whole number.", field=name) from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ServiceError(f"{name} must be {bounds}.", field=name)
    return value


class RunListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "RunCreateInput"

        agent = serializers.IntegerField()
        prompt = serializers.CharField(trim_whitespace=False)
        thread = serializers.IntegerField(required=False, allow_null=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("thread", int),
            OpenApiParameter("agent", int),
            OpenApiParameter("status", str, enum=RunStatus.values),
        ],
        responses=RunOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        status_filter = request.query_params.get("status") or None
        if status_filter and status_filter not in RunStatus.values:
            raise ServiceError(
                f"status must be one of {', '.join(RunStatus.values)}.", field="status"
            )
        runs = run_selectors.run_list_for_user(
            user=request.user,
            thread=_int_param(request, "thread", default=0, low=0) or None,
            agent=_int_param(request, "agent", default=0, low=0) or None,
            status=status_filter,
        )
        return _paginate(request, self, runs, RunOutput)

    @extend_schema(request=Input, responses={201: RunOutput})
    def post(self, request: Request) -> Response:
        data = _validated(self.Input, request.data)
        actor, agent = _membership_for_agent(request.user, data["agent"])
        thread = None
        if data.get("thread"):
            thread = thread_selectors.thread_get(team=actor.team, thread_id=data["thread"])
        run = run_services.run_start(actor=actor, agent=agent, prompt=data["prompt"], thread=thread)
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    @extend_schema(responses=RunOutput)
    def get(self, request: Request, run_id: int) -> Response:
        run = run_selectors.run_get_for_user(user=request.user, run_id=run_id)
        return Response(RunOutput(run).data)


class RunCancelApi(APIView):
    @extend_schema(request=None, responses={202: RunOutput})
    def post(self, request: Request, run_id: int) -> Response:
        run = run_selectors.run_get_for_user(user=request.user, run_id=run_id)
        actor = team_selectors.membership_get(user=request.user, team_id=run.team_id)
        run = run_services.run_request_cancel(actor=actor, run=run)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RunMessageApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "RunMessageInput"

        body = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=Input, responses={201: MessageOutput})
    def post(self, request: Request, run_id: int) -> Response:
        run = run_selectors.run_get_for_user(user=request.user, run_id=run_id)
        actor = team_selectors.membership_get(user=request.user, team_id=run.team_id)
        data = _validated(self.Input, request.data)
        message = run_services.run_send_message(actor=actor, run=run, body=data["body"])
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)


class RunEventListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("since", int), OpenApiParameter("limit", int)],
        responses=RunEventOutput(many=True),
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = run_selectors.run_get_for_user(user=request.user, run_id=run_id)
        events = run_selectors.run_events(
            run=run,
            since=_int_param(request, "since", default=0, low=0),
            limit=_int_param(request, "limit", default=500, low=1, high=2000),
        )
        return Response(RunEventOutput(events, many=True).data)
