"""The public REST API, /api/v1/. Thin: parse input, call a selector or service, serialise."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
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
    ArtifactDetailOutput,
    ArtifactOutput,
    ArtifactVersionOutput,
    DeliveryOutput,
    MemberOutput,
    MemoryOutput,
    MessageOutput,
    RunEventOutput,
    RunOutput,
    TeamOutput,
    ThreadOutput,
)
from apps.artifacts import selectors as artifact_selectors
from apps.artifacts import services as artifact_services
from apps.artifacts.models import Artifact, ArtifactKind, ArtifactVersion
from apps.core.errors import NotFound, ServiceError
from apps.runs import selectors as run_selectors
from apps.runs import services as run_services
from apps.runs.models import RunStatus
from apps.teams import selectors as team_selectors
from apps.teams import services as team_services
from apps.teams.models import Membership, Role
from apps.threads import selectors as thread_selectors
from apps.threads import services as thread_services
from apps.threads.events import delivery_payload
from apps.threads.models import Delivery, Thread

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
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "TeamUpdateInput"

        hop_limit = serializers.IntegerField(
            min_value=team_services.HOP_LIMIT_RANGE[0],
            max_value=team_services.HOP_LIMIT_RANGE[1],
            help_text="Agent-to-agent steps before a new delivery waits for a human.",
        )

    @extend_schema(responses=TeamOutput)
    def get(self, request: Request, team_id: int) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        context = {"roles": {membership.team_id: membership.role}}
        return Response(TeamOutput(membership.team, context=context).data)

    @extend_schema(request=Input, responses=TeamOutput)
    def patch(self, request: Request, team_id: int) -> Response:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        data = _validated(self.Input, request.data)
        team = team_services.team_set_hop_limit(actor=actor, hop_limit=data["hop_limit"])
        return Response(TeamOutput(team, context={"roles": {team.pk: actor.role}}).data)


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


# -- artifacts --------------------------------------------------------------------------------

# type "/" subtype, with optional parameters: anything else is not sent back as a header.
MEDIA_TYPE_RE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+\-\"]+)*$")


def _membership_for_artifact(
    user: AbstractBaseUser, artifact_id: int
) -> tuple[Membership, Artifact]:
    artifact = artifact_selectors.artifact_get_for_user(user=user, artifact_id=artifact_id)
    return team_selectors.membership_get(user=user, team_id=artifact.team_id), artifact


class ArtifactListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ArtifactPutInput"

        name = serializers.CharField(
            max_length=200, required=False, help_text="Defaults to the uploaded file's name."
        )
        content = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        file = serializers.FileField(required=False, help_text="Multipart: the bytes to store.")
        kind = serializers.ChoiceField(choices=ArtifactKind.choices, default=ArtifactKind.FILE)
        media_type = serializers.RegexField(
            MEDIA_TYPE_RE, max_length=120, required=False, allow_blank=True
        )
        url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
        thread = serializers.IntegerField(required=False, allow_null=True)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if ("content" in attrs) == ("file" in attrs):
                raise serializers.ValidationError(
                    {"content": "Send either content (text) or a file upload, not both."}
                )
            if not attrs.get("name") and "file" in attrs:
                attrs["name"] = PurePosixPath(attrs["file"].name).name
            if not attrs.get("name"):
                raise serializers.ValidationError({"name": "An artifact needs a name."})
            return attrs

    @extend_schema(
        parameters=[OpenApiParameter("thread", int)], responses=ArtifactOutput(many=True)
    )
    def get(self, request: Request, team_id: int) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        artifacts = artifact_selectors.artifact_list(
            team=membership.team,
            thread_id=_int_param(request, "thread", default=0, low=0) or None,
        )
        return _paginate(request, self, artifacts, ArtifactOutput)

    @extend_schema(
        request={"application/json": Input, "multipart/form-data": Input},
        responses={201: ArtifactDetailOutput},
        description="Store a new version of the named artifact (created on first put).",
    )
    def post(self, request: Request, team_id: int) -> Response:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        data = _validated(self.Input, request.data)
        thread = None
        if data.get("thread"):
            thread = thread_selectors.thread_get(team=actor.team, thread_id=data["thread"])
        media_type = data.get("media_type", "")
        if "file" in data:
            upload = data["file"]
            artifact_services.artifact_check_size(upload.size)
            content = upload.read()
            # A browser's application/octet-stream says nothing: the service guesses instead.
            sent = upload.content_type or ""
            if not media_type and sent != "application/octet-stream" and MEDIA_TYPE_RE.match(sent):
                media_type = sent
        else:
            content = data["content"]
        version = artifact_services.artifact_put_as_human(
            actor=actor,
            name=data["name"],
            content=content,
            kind=data["kind"],
            media_type=media_type,
            url=data.get("url", ""),
            thread=thread,
        )
        return Response(ArtifactDetailOutput(version.artifact).data, status=status.HTTP_201_CREATED)


class ArtifactDetailApi(APIView):
    @extend_schema(responses=ArtifactDetailOutput)
    def get(self, request: Request, artifact_id: int) -> Response:
        _, artifact = _membership_for_artifact(request.user, artifact_id)
        return Response(ArtifactDetailOutput(artifact).data)


class ArtifactVersionListApi(APIView):
    @extend_schema(responses=ArtifactVersionOutput(many=True))
    def get(self, request: Request, artifact_id: int) -> Response:
        _, artifact = _membership_for_artifact(request.user, artifact_id)
        versions = artifact_selectors.artifact_version_list(artifact=artifact)
        return _paginate(request, self, versions, ArtifactVersionOutput)


def _version(request: Request, artifact_id: int, version: int) -> ArtifactVersion:
    _, artifact = _membership_for_artifact(request.user, artifact_id)
    return artifact_selectors.artifact_version_get(artifact=artifact, version=version)


class ArtifactVersionDetailApi(APIView):
    @extend_schema(responses=ArtifactVersionOutput)
    def get(self, request: Request, artifact_id: int, version: int) -> Response:
        return Response(ArtifactVersionOutput(_version(request, artifact_id, version)).data)


class ArtifactVersionDownloadApi(APIView):
    """The stored bytes, always as an attachment: never rendered by the browser as a page."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The body is the file, not a rendering: whatever the client accepts, it gets the bytes.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="Sent with the version's media type."
            )
        }
    )
    def get(self, request: Request, artifact_id: int, version: int) -> FileResponse:
        found = _version(request, artifact_id, version)
        media_type = found.media_type
        if not MEDIA_TYPE_RE.match(media_type):
            media_type = "application/octet-stream"
        response = FileResponse(
            found.content.open("rb"),
            as_attachment=True,
            filename=PurePosixPath(found.artifact.name).name,
            content_type=media_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


# -- team memory ------------------------------------------------------------------------------


class TeamMemoryListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("prefix", str, description="Only keys starting with it.")],
        responses=MemoryOutput(many=True),
    )
    def get(self, request: Request, team_id: int) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        notes = artifact_selectors.memory_list(
            team=membership.team, prefix=request.query_params.get("prefix", "")
        )
        return _paginate(request, self, notes, MemoryOutput)


class TeamMemoryDetailApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MemoryPutInput"

        value = serializers.CharField(allow_blank=True, trim_whitespace=False)

    @extend_schema(responses=MemoryOutput)
    def get(self, request: Request, team_id: int, key: str) -> Response:
        membership = team_selectors.membership_get(user=request.user, team_id=team_id)
        note = artifact_services.memory_get(team=membership.team, key=key)
        return Response(MemoryOutput(note).data)

    @extend_schema(request=Input, responses=MemoryOutput)
    def put(self, request: Request, team_id: int, key: str) -> Response:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        data = _validated(self.Input, request.data)
        note = artifact_services.memory_set_as_human(actor=actor, key=key, value=data["value"])
        return Response(MemoryOutput(note).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, team_id: int, key: str) -> Response:
        actor = team_selectors.membership_get(user=request.user, team_id=team_id)
        artifact_services.memory_get(team=actor.team, key=key)  # a missing key is a 404
        artifact_services.memory_delete(actor=actor, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- deliveries -------------------------------------------------------------------------------


class DeliveryReleaseApi(APIView):
    @extend_schema(
        request=None,
        responses=DeliveryOutput,
        description="Let a delivery held at the team's hop limit through to its agent.",
    )
    def post(self, request: Request, delivery_id: int) -> Response:
        delivery = (
            Delivery.objects.select_related("agent", "message__thread")
            .filter(pk=delivery_id, message__thread__team__memberships__user=request.user)
            .first()
        )
        if delivery is None:
            raise NotFound()
        actor = team_selectors.membership_get(
            user=request.user, team_id=delivery.message.thread.team_id
        )
        delivery = thread_services.delivery_release(actor=actor, delivery=delivery)
        delivery.refresh_from_db(fields=["state", "held", "reason", "run", "updated_at"])
        return Response(DeliveryOutput(delivery_payload(delivery)).data)
