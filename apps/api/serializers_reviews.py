"""Output of the review endpoints: line comments and reviews (changes and artifacts alike)."""

from __future__ import annotations

from rest_framework import serializers

from apps.repos.models import Review, ReviewComment


class ReviewCommentOutput(serializers.ModelSerializer):
    change = serializers.IntegerField(source="change_id", allow_null=True)
    artifact = serializers.IntegerField(source="artifact_id", allow_null=True)
    reply_to = serializers.IntegerField(source="reply_to_id", allow_null=True)
    author = serializers.SerializerMethodField()
    sent_in = serializers.IntegerField(
        source="sent_in_id", allow_null=True, help_text="The review message that carried it."
    )
    # DRF pops declared fields off the class, so `context` shadows no Serializer attribute.
    context = serializers.CharField(  # type: ignore[assignment]
        help_text="The code at the line, with a few lines around it, as the agent gets it."
    )

    class Meta:
        model = ReviewComment
        fields = [
            "id", "change", "artifact", "version", "path", "line", "end_line", "side", "body",
            "reply_to", "state", "context", "author", "sent_in", "created_at", "updated_at",
        ]  # fmt: skip

    def get_author(self, comment: ReviewComment) -> str | None:
        return comment.author.get_username() if comment.author else None


class ReviewOutput(serializers.ModelSerializer):
    change = serializers.IntegerField(source="change_id", allow_null=True)
    artifact = serializers.IntegerField(source="artifact_id", allow_null=True)
    author = serializers.SerializerMethodField()
    message = serializers.IntegerField(
        source="message_id",
        allow_null=True,
        help_text="The message that took it to the agent (null when it was not sent).",
    )

    class Meta:
        model = Review
        fields = [
            "id", "change", "artifact", "version", "verdict", "body", "author", "message",
            "created_at",
        ]  # fmt: skip

    def get_author(self, review: Review) -> str | None:
        return review.author.get_username() if review.author else None
