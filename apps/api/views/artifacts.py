"""/teams/{id}/artifacts/ and /artifacts/{id}/: artifacts, their versions and their bytes."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import ArtifactDetailOutput, ArtifactOutput, ArtifactVersionOutput
from apps.api.views.common import AuthenticatedRequest, int_param, paginate, validated
from apps.artifacts import services
from apps.artifacts.models import ArtifactKind, ArtifactVersion
from apps.artifacts.selectors import (
    access_artifact,
    artifact_list,
    artifact_version_get,
    artifact_version_list,
)
from apps.teams.selectors import access_team
from apps.threads.selectors import thread_get

# type "/" subtype, with optional parameters: anything else is not sent back as a header.
MEDIA_TYPE_RE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+\-\"]+)*$")


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
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        artifacts = artifact_list(
            team=membership.team,
            thread_id=int_param(request, "thread", default=0, low=0) or None,
        )
        return paginate(request, self, artifacts, ArtifactOutput)

    @extend_schema(
        request={"application/json": Input, "multipart/form-data": Input},
        responses={201: ArtifactDetailOutput},
        description="Store a new version of the named artifact (created on first put).",
    )
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data)
        thread = None
        if data.get("thread"):
            thread = thread_get(team=actor.team, thread_id=data["thread"])
        media_type = data.get("media_type", "")
        if "file" in data:
            upload = data["file"]
            services.artifact_check_size(upload.size)
            content = upload.read()
            # A browser's application/octet-stream says nothing: the service guesses instead.
            sent = upload.content_type or ""
            if not media_type and sent != "application/octet-stream" and MEDIA_TYPE_RE.match(sent):
                media_type = sent
        else:
            content = data["content"]
        version = services.artifact_put_as_human(
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
    def get(self, request: AuthenticatedRequest, artifact_id: int) -> Response:
        _, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
        return Response(ArtifactDetailOutput(artifact).data)


class ArtifactVersionListApi(APIView):
    @extend_schema(responses=ArtifactVersionOutput(many=True))
    def get(self, request: AuthenticatedRequest, artifact_id: int) -> Response:
        _, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
        versions = artifact_version_list(artifact=artifact)
        return paginate(request, self, versions, ArtifactVersionOutput)


def _version(request: AuthenticatedRequest, artifact_id: int, version: int) -> ArtifactVersion:
    _, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
    return artifact_version_get(artifact=artifact, version=version)


class ArtifactVersionDetailApi(APIView):
    @extend_schema(responses=ArtifactVersionOutput)
    def get(self, request: AuthenticatedRequest, artifact_id: int, version: int) -> Response:
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
    def get(self, request: AuthenticatedRequest, artifact_id: int, version: int) -> FileResponse:
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
