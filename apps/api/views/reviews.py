"""Line comments and reviews: /changes/{id}/comments/, /changes/{id}/reviews/, the same under
/artifacts/{id}/, and /comments/{id}/ (resolve). Services: apps.repos.reviews."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers_reviews import ReviewCommentOutput, ReviewOutput
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.artifacts.selectors import access_artifact
from apps.core.ids import MAX_ID, id_field
from apps.repos import reviews
from apps.repos.models import CommentSide, CommentState, Verdict
from apps.repos.review_selectors import access_comment, comment_list, review_list
from apps.repos.selectors import access_change

LINE_MAX = 2**31 - 1
STATE_PARAMETER = OpenApiParameter(
    "state",
    {"type": "string", "enum": list(CommentState.values)},
    description="Only comments in this state.",
)


def _line_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=LINE_MAX, **kwargs)


class _CommentFields(serializers.Serializer):
    body = serializers.CharField(trim_whitespace=False)
    end_line = _line_field(
        required=False, allow_null=True, help_text="The last line of a range (inclusive)."
    )
    reply_to = id_field(
        required=False,
        allow_null=True,
        help_text="A comment to answer: the reply goes in its thread (its path and line).",
    )


def _comment_input(data: dict[str, Any]) -> reviews.CommentInput:
    return reviews.CommentInput(
        line=data.get("line") or 1,
        body=data["body"],
        end_line=data.get("end_line"),
        reply_to=data.get("reply_to"),
    )


def _state(request: AuthenticatedRequest) -> str | None:
    state = request.query_params.get("state") or None
    if state is not None and state not in CommentState.values:
        raise serializers.ValidationError({"state": "pending, sent or resolved."})
    return state


class ChangeCommentListApi(APIView):
    class Input(_CommentFields):
        class Meta:
            ref_name = "ChangeCommentInput"

        path = serializers.CharField(
            max_length=1000, required=False, help_text="The file (not needed for a reply)."
        )
        line = _line_field(required=False, help_text="Not needed for a reply.")
        version = serializers.IntegerField(
            min_value=1, max_value=MAX_ID, required=False, help_text="Default: the newest."
        )
        side = serializers.ChoiceField(
            choices=CommentSide.choices,
            default=CommentSide.NEW,
            help_text='"new": a line of the version; "old": a line of the base it changes.',
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("reply_to") and ("path" not in attrs or "line" not in attrs):
                missing = "path" if "path" not in attrs else "line"
                raise serializers.ValidationError({missing: "This field is required."})
            return attrs

    @extend_schema(parameters=[STATE_PARAMETER], responses=ReviewCommentOutput(many=True))
    def get(self, request: AuthenticatedRequest, change_id: int) -> Response:
        _, change = access_change(user=request.user, change_id=change_id)
        comments = comment_list(change=change, state=_state(request))
        return paginate(request, self, comments, ReviewCommentOutput)

    @extend_schema(
        request=Input,
        responses={201: ReviewCommentOutput},
        description="Comment on a line of the change's diff (a line the diff does not show "
        "is a 400). It stays pending until a review sends it to the agent.",
    )
    def post(self, request: AuthenticatedRequest, change_id: int) -> Response:
        actor, change = access_change(user=request.user, change_id=change_id)
        data = validated(self.Input, request.data)
        comment = reviews.change_comment_create(
            actor=actor,
            change=change,
            comment=_comment_input(data),
            path=data.get("path"),
            version=data.get("version"),
            side=data["side"],
        )
        return Response(ReviewCommentOutput(comment).data, status=status.HTTP_201_CREATED)


class ArtifactCommentListApi(APIView):
    class Input(_CommentFields):
        class Meta:
            ref_name = "ArtifactCommentInput"

        version = serializers.IntegerField(
            min_value=1, max_value=MAX_ID, required=False, help_text="Default: the newest."
        )
        line = _line_field(required=False, help_text="Not needed for a reply.")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("reply_to") and "line" not in attrs:
                raise serializers.ValidationError({"line": "This field is required."})
            return attrs

    @extend_schema(parameters=[STATE_PARAMETER], responses=ReviewCommentOutput(many=True))
    def get(self, request: AuthenticatedRequest, artifact_id: int) -> Response:
        _, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
        comments = comment_list(artifact=artifact, state=_state(request))
        return paginate(request, self, comments, ReviewCommentOutput)

    @extend_schema(
        request=Input,
        responses={201: ReviewCommentOutput},
        description="Comment on a line of a text artifact version; pending until a review.",
    )
    def post(self, request: AuthenticatedRequest, artifact_id: int) -> Response:
        actor, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
        data = validated(self.Input, request.data)
        comment = reviews.artifact_comment_create(
            actor=actor, artifact=artifact, comment=_comment_input(data),
            version=data.get("version"),
        )  # fmt: skip
        return Response(ReviewCommentOutput(comment).data, status=status.HTTP_201_CREATED)


class CommentDetailApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ReviewCommentUpdateInput"

        # Optional, as in any PATCH: an empty one changes nothing.
        state = serializers.ChoiceField(
            choices=[(CommentState.RESOLVED, "Resolved")],
            required=False,
            help_text='"resolved": the comment (and its replies) need nothing more.',
        )

    @extend_schema(responses=ReviewCommentOutput)
    def get(self, request: AuthenticatedRequest, comment_id: int) -> Response:
        _, comment = access_comment(user=request.user, comment_id=comment_id)
        return Response(ReviewCommentOutput(comment).data)

    @extend_schema(request=Input, responses=ReviewCommentOutput)
    def patch(self, request: AuthenticatedRequest, comment_id: int) -> Response:
        actor, comment = access_comment(user=request.user, comment_id=comment_id)
        if "state" in validated(self.Input, request.data):
            comment = reviews.comment_resolve(actor=actor, comment=comment)
        return Response(ReviewCommentOutput(comment).data)


class _ReviewFields(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    body = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    send = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Send the review and the pending comments to the agent (request_changes "
        "always does).",
    )


class ChangeReviewListApi(APIView):
    class Input(_ReviewFields):
        class Meta:
            ref_name = "ChangeReviewInput"

    @extend_schema(responses=ReviewOutput(many=True))
    def get(self, request: AuthenticatedRequest, change_id: int) -> Response:
        _, change = access_change(user=request.user, change_id=change_id)
        return paginate(request, self, review_list(change=change), ReviewOutput)

    @extend_schema(
        request=Input,
        responses={201: ReviewOutput},
        description="Review the change's newest version. request_changes (or send: true) "
        "posts one message to the change's agent with the body and every pending comment.",
    )
    def post(self, request: AuthenticatedRequest, change_id: int) -> Response:
        actor, change = access_change(user=request.user, change_id=change_id)
        data = validated(self.Input, request.data)
        review = reviews.change_review_create(
            actor=actor, change=change, verdict=data["verdict"], body=data["body"],
            send=data["send"],
        )  # fmt: skip
        return Response(ReviewOutput(review).data, status=status.HTTP_201_CREATED)


class ArtifactReviewListApi(APIView):
    class Input(_ReviewFields):
        class Meta:
            ref_name = "ArtifactReviewInput"

        version = serializers.IntegerField(
            min_value=1, max_value=MAX_ID, required=False, help_text="Default: the newest."
        )

    @extend_schema(responses=ReviewOutput(many=True))
    def get(self, request: AuthenticatedRequest, artifact_id: int) -> Response:
        _, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
        return paginate(request, self, review_list(artifact=artifact), ReviewOutput)

    @extend_schema(
        request=Input,
        responses={201: ReviewOutput},
        description="Review an artifact version; request_changes (or send: true) goes to the "
        "agent that wrote that version.",
    )
    def post(self, request: AuthenticatedRequest, artifact_id: int) -> Response:
        actor, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
        data = validated(self.Input, request.data)
        review = reviews.artifact_review_create(
            actor=actor, artifact=artifact, verdict=data["verdict"], body=data["body"],
            send=data["send"], version=data.get("version"),
        )  # fmt: skip
        return Response(ReviewOutput(review).data, status=status.HTTP_201_CREATED)
