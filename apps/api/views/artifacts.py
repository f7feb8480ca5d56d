"""/teams/{id}/artifacts/ and /artifacts/{id}/: artifacts, their versions and their bytes."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import ArtifactDetailOutput, ArtifactOutput, ArtifactVersionOutput
from apps.api.views.common import AuthenticatedRequest, id_param, paginate, validated
from apps.artifacts import services
from apps.artifacts.media_types import (
    MEDIA_TYPE_HELP,
    MEDIA_TYPE_MAX_LENGTH,
    MEDIA_TYPE_PATTERN,
    is_media_type,
)
from apps.artifacts.models import ArtifactKind, ArtifactVersion
from apps.artifacts.selectors import (
    access_artifact,
    artifact_list,
    artifact_version_get,
    artifact_version_list,
    artifact_version_open,
)
from apps.core.ids import ID_SCHEMA, id_field
from apps.teams.selectors import access_team
from apps.threads.selectors import thread_get


@extend_schema_field({"type": "string", "format": "binary"})
class UploadField(serializers.FileField):
    """A file of a multipart body (drf-spectacular would call it a URI otherwise)."""


class ArtifactListApi(APIView):
    # JSON with the content as text, or a multipart upload of the bytes.
    parser_classes = [*APIView.parser_classes, MultiPartParser]

    class Input(serializers.Serializer):
        """JSON: the content as text."""

        class Meta:
            ref_name = "ArtifactPutInput"

        name = serializers.RegexField(
            services.NAME_INPUT,
            trim_whitespace=False,
            error_messages={"invalid": services.NAME_HELP},
        )
        content = serializers.CharField(allow_blank=True, trim_whitespace=False)
        kind = serializers.ChoiceField(choices=ArtifactKind.choices, default=ArtifactKind.FILE)
        media_type = serializers.RegexField(
            MEDIA_TYPE_PATTERN,
            max_length=MEDIA_TYPE_MAX_LENGTH,
            required=False,
            allow_blank=True,
            help_text=MEDIA_TYPE_HELP,
        )
        url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
        thread = id_field(required=False, allow_null=True)

    class UploadInput(Input):
        """multipart/form-data: the bytes as a file."""

        class Meta:
            ref_name = "ArtifactUploadInput"

        name = serializers.RegexField(
            services.NAME_INPUT,
            required=False,
            allow_blank=True,
            trim_whitespace=False,
            error_messages={"invalid": services.NAME_HELP},
            help_text="Absent or empty: the file's name.",
        )
        content = None  # type: ignore[assignment]  # the file instead
        file = UploadField(help_text="The bytes to store.")
        thread = id_field(required=False)  # a form has no null: absent for none

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("name"):
                attrs["name"] = PurePosixPath(attrs["file"].name).name
            return attrs

    @extend_schema(
        parameters=[OpenApiParameter("thread", ID_SCHEMA)], responses=ArtifactOutput(many=True)
    )
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        artifacts = artifact_list(
            team=membership.team,
            thread_id=id_param(request, "thread"),
        )
        return paginate(request, self, artifacts, ArtifactOutput)

    @extend_schema(
        request={"application/json": Input, "multipart/form-data": UploadInput},
        responses={201: ArtifactDetailOutput},
        description="Store a new version of the named artifact (created on first put).",
    )
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        upload = (request.content_type or "").startswith("multipart/form-data")
        data = validated(self.UploadInput if upload else self.Input, request.data)
        thread = None
        if data.get("thread"):
            thread = thread_get(team=actor.team, thread_id=data["thread"])
        media_type = data.get("media_type", "")
        if "file" in data:
            upload = data["file"]
            services.artifact_check_size(upload.size)
            content = upload.read()
            # A browser's application/octet-stream says nothing (and a part's Content-Type is
            # not a field the client filled in): the service guesses instead of refusing.
            sent = upload.content_type or ""
            if not media_type and sent != "application/octet-stream" and is_media_type(sent):
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
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The bytes, as an attachment with the version's media type "
                "(application/octet-stream when it has none).",
            )
        }
    )
    def get(self, request: AuthenticatedRequest, artifact_id: int, version: int) -> FileResponse:
        found = _version(request, artifact_id, version)
        media_type = found.media_type
        if not is_media_type(media_type):  # stored before media types were checked
            media_type = "application/octet-stream"
        response = FileResponse(
            artifact_version_open(found),
            as_attachment=True,
            filename=PurePosixPath(found.artifact.name).name,
            content_type=media_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
