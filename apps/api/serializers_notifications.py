"""Output shapes of the inbox and of outgoing webhooks (apps.notifications)."""

from __future__ import annotations

from rest_framework import serializers

from apps.notifications.models import (
    WEBHOOK_EVENTS,
    Notification,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)


class NotificationOutput(serializers.ModelSerializer):
    read = serializers.SerializerMethodField(help_text="Whether it has been read.")
    url = serializers.CharField(help_text="Where it points on this site (a path), or empty.")

    class Meta:
        model = Notification
        fields = ["id", "team", "kind", "title", "url", "data", "read", "read_at", "created_at"]

    def get_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class MarkedOutput(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications were unread.")


class WebhookOutput(serializers.ModelSerializer):
    """A webhook; its secret is never shown, only whether it has one."""

    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENTS),
        help_text="The events it receives.",
    )
    has_secret = serializers.BooleanField(
        help_text="Deliveries carry X-Ozweb-Signature (HMAC-SHA256 of the body with it)."
    )

    class Meta:
        model = Webhook
        fields = [
            "id", "team", "url", "events", "format", "has_secret", "enabled", "created_at",
            "updated_at",
        ]  # fmt: skip


class WebhookAttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number", "status_code", "ok", "error", "response_excerpt", "duration_ms",
            "created_at",
        ]  # fmt: skip


class WebhookDeliveryOutput(serializers.ModelSerializer):
    attempts = WebhookAttemptOutput(
        source="attempt_list", many=True, help_text="Every attempt, in order."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "delivery_id", "event", "status", "attempts", "next_attempt_at", "created_at",
        ]  # fmt: skip
