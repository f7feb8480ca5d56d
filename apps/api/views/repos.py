"""/teams/{id}/repos/, /repos/{id}/ and /changes/: team repositories and the changes runs
push to them (the review endpoints under /changes/{id}/ are apps.api.views.reviews)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import MessageOutput
from apps.api.serializers_repos import (
    ChangeOutput,
    ChangeVersionOutput,
    MergeConflictOutput,
    RepositoryOutput,
)
from apps.api.views.common import AuthenticatedRequest, id_param, int_param, paginate, validated
from apps.core.errors import ServiceError
from apps.core.ids import ID_SCHEMA
from apps.repos import git, services
from apps.repos.models import REPO_NAME_PATTERN, ChangeStatus
from apps.repos.selectors import (
    access_change,
    access_repo,
    change_list,
    change_version_get,
    change_versions,
    repo_list,
)
from apps.teams.models import Role
from apps.teams.selectors import access_team


def _base(request: Request) -> str:
    return request.build_absolute_uri("/")


class RepoListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "RepositoryCreateInput"

        name = serializers.RegexField(
            REPO_NAME_PATTERN, max_length=100, error_messages={"invalid": services.NAME_HELP}
        )
        # DRF pops declared fields off the class, so `source` shadows no Field attribute.
        source = serializers.CharField(  # type: ignore[assignment]
            max_length=2000,
            required=False,
            allow_blank=True,
            help_text="An https:// or ssh git URL to import (local paths and file:// only when "
            "the server sets OZWEB_ALLOW_LOCAL_REPO_SOURCES). Absent: an empty repository.",
        )

    @extend_schema(responses=RepositoryOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return paginate(
            request,
            self,
            repo_list(team=membership.team),
            RepositoryOutput,
            base_url=_base(request),
        )

    @extend_schema(
        request=Input,
        responses={201: RepositoryOutput},
        description="Create an empty repository (default branch main), or import one.",
    )
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data)
        repo = services.repo_create(actor=actor, name=data["name"], source=data.get("source", ""))
        return Response(
            RepositoryOutput(repo, context={"base_url": _base(request)}).data,
            status=status.HTTP_201_CREATED,
        )


class RepoDetailApi(APIView):
    @extend_schema(responses=RepositoryOutput)
    def get(self, request: AuthenticatedRequest, repo_id: int) -> Response:
        _, repo = access_repo(user=request.user, repo_id=repo_id)
        return Response(RepositoryOutput(repo, context={"base_url": _base(request)}).data)


class ChangeListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("team", ID_SCHEMA, required=True),
            OpenApiParameter("repo", ID_SCHEMA),
            OpenApiParameter("run", ID_SCHEMA),
            OpenApiParameter("agent", ID_SCHEMA),
            OpenApiParameter("status", {"type": "string", "enum": ChangeStatus.values}),
        ],
        responses=ChangeOutput(many=True),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        team_id = id_param(request, "team")
        if team_id is None:
            raise ServiceError("team is required.", field="team")
        membership = access_team(user=request.user, team_id=team_id)
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in ChangeStatus.values:
            raise ServiceError(
                f"status must be one of {', '.join(ChangeStatus.values)}.", field="status"
            )
        changes = change_list(
            team=membership.team,
            repo_id=id_param(request, "repo"),
            run_id=id_param(request, "run"),
            agent_id=id_param(request, "agent"),
            status=wanted,
        )
        return paginate(request, self, changes, ChangeOutput)


class ChangeDetailApi(APIView):
    @extend_schema(responses=ChangeOutput)
    def get(self, request: AuthenticatedRequest, change_id: int) -> Response:
        _, change = access_change(user=request.user, change_id=change_id)
        return Response(ChangeOutput(change).data)


class ChangeDiffApi(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The body is the diff as text, whatever the client accepts.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "version",
                {"type": "integer", "minimum": 1},
                description="The version to show (default: the newest).",
            ),
            OpenApiParameter(
                "from",
                {"type": "integer", "minimum": 1},
                description="Diff against this version's head instead of the base.",
            ),
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="The unified diff (git diff)."
            )
        },
    )
    def get(self, request: AuthenticatedRequest, change_id: int) -> HttpResponse:
        _, change = access_change(user=request.user, change_id=change_id)
        number = int_param(request, "version", default=0, low=1) or None
        version = change_version_get(change=change, number=number)
        from_number = int_param(request, "from", default=0, low=1) or None
        start = (
            change_version_get(change=change, number=from_number).head
            if from_number is not None
            else version.base_sha
        )
        try:
            text = git.diff_text(change.repo, start, version.head)
        except git.GitError as exc:
            raise ServiceError(f"Could not compute the diff: {exc}") from exc
        return HttpResponse(text, content_type="text/plain; charset=utf-8")


class ChangeVersionListApi(APIView):
    pagination_class = None

    @extend_schema(responses=ChangeVersionOutput(many=True))
    def get(self, request: AuthenticatedRequest, change_id: int) -> Response:
        _, change = access_change(user=request.user, change_id=change_id)
        return Response(ChangeVersionOutput(change_versions(change), many=True).data)


class ChangeMergeApi(APIView):
    @extend_schema(
        request=None,
        responses={200: ChangeOutput, 409: MergeConflictOutput},
        description="Merge the branch into its base (members and above). When it does not "
        "merge cleanly: 409 with the conflicting paths, and nothing changed.",
    )
    def post(self, request: AuthenticatedRequest, change_id: int) -> Response:
        actor, change = access_change(user=request.user, change_id=change_id, role=Role.MEMBER)
        try:
            change = services.change_merge(actor=actor, change=change)
        except services.MergeConflict as exc:
            return Response(
                {"detail": exc.message, "code": exc.code, "conflicts": exc.conflicts},
                status=status.HTTP_409_CONFLICT,
            )
        _, change = access_change(user=request.user, change_id=change.pk)
        return Response(ChangeOutput(change).data)


class ChangeSendConflictApi(APIView):
    @extend_schema(
        request=None,
        responses={201: MessageOutput},
        description="Send the merge conflict to the change's agent: a message in the change's "
        "thread, addressed to it, naming the conflicting files; its run works on the change's "
        "branch and its next push is the next version. 409 when the change merges cleanly.",
    )
    def post(self, request: AuthenticatedRequest, change_id: int) -> Response:
        actor, change = access_change(user=request.user, change_id=change_id, role=Role.MEMBER)
        message = services.change_send_conflict(actor=actor, change=change)
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)


class ChangeCloseApi(APIView):
    @extend_schema(
        request=None, responses=ChangeOutput, description="Close the change without merging."
    )
    def post(self, request: AuthenticatedRequest, change_id: int) -> Response:
        actor, change = access_change(user=request.user, change_id=change_id, role=Role.MEMBER)
        services.change_close(actor=actor, change=change)
        _, change = access_change(user=request.user, change_id=change.pk)
        return Response(ChangeOutput(change).data)
