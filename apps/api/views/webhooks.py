"""/teams/{id}/webhooks/ and /webhooks/{id}/: a team's outgoing webhooks and their deliveries
(owners and admins; another team's webhook is a 404)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers_notifications import WebhookDeliveryOutput, WebhookOutput
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.notifications import webhooks
from apps.notifications.addresses import MAX_URL_LENGTH
from apps.notifications.models import WEBHOOK_EVENTS, WebhookFormat
from apps.notifications.selectors import access_webhook, delivery_list, webhook_list
from apps.teams.models import Role
from apps.teams.selectors import access_team


class WebhookInput(serializers.Serializer):
    url = serializers.CharField(
        max_length=MAX_URL_LENGTH,
        help_text="http(s) URL to POST events to; loopback, private and link-local addresses "
        "are refused.",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENTS),
        allow_empty=False,
        min_length=1,
        max_length=len(WEBHOOK_EVENTS) * 2,
    )
    secret = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=webhooks.MAX_SECRET_LENGTH,
        write_only=True,
        help_text="Signs each body: X-Ozweb-Signature: sha256=<hex HMAC-SHA256>. Never shown.",
    )
    format = serializers.ChoiceField(choices=WebhookFormat.choices, default=WebhookFormat.JSON)


class WebhookUpdateInput(WebhookInput):
    enabled = serializers.BooleanField(required=False)


class TeamWebhookListApi(APIView):
    @extend_schema(responses=WebhookOutput(many=True), summary="The team's webhooks (admins)")
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
        return paginate(request, self, webhook_list(team_id=actor.team_id), WebhookOutput)

    @extend_schema(
        request=WebhookInput,
        responses={201: WebhookOutput},
        summary="Add a webhook (admins)",
        description="Each subscribed event is POSTed as JSON `{event, team, created_at, data}` "
        "(or Slack's `{text}`), with X-Ozweb-Delivery and, given a secret, X-Ozweb-Signature; "
        "failed attempts are retried with exponential backoff.",
    )
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(WebhookInput, request.data)
        webhook = webhooks.webhook_create(actor=actor, **data)
        return Response(WebhookOutput(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    @extend_schema(responses=WebhookOutput, summary="A webhook (admins)")
    def get(self, request: AuthenticatedRequest, webhook_id: int) -> Response:
        _, webhook = access_webhook(user=request.user, webhook_id=webhook_id)
        return Response(WebhookOutput(webhook).data)

    @extend_schema(
        request=WebhookUpdateInput(partial=True),
        responses=WebhookOutput,
        summary='Change a webhook (admins); a secret of "" removes it',
    )
    def patch(self, request: AuthenticatedRequest, webhook_id: int) -> Response:
        actor, webhook = access_webhook(user=request.user, webhook_id=webhook_id)
        data = validated(WebhookUpdateInput, request.data, partial=True)
        webhook = webhooks.webhook_update(actor=actor, webhook=webhook, **data)
        return Response(WebhookOutput(webhook).data)

    @extend_schema(responses={204: None}, summary="Delete a webhook and its deliveries (admins)")
    def delete(self, request: AuthenticatedRequest, webhook_id: int) -> Response:
        actor, webhook = access_webhook(user=request.user, webhook_id=webhook_id)
        webhooks.webhook_delete(actor=actor, webhook=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(APIView):
    @extend_schema(
        responses=WebhookDeliveryOutput(many=True),
        summary="A webhook's deliveries, newest first, with every attempt (admins)",
    )
    def get(self, request: AuthenticatedRequest, webhook_id: int) -> Response:
        _, webhook = access_webhook(user=request.user, webhook_id=webhook_id)
        return paginate(request, self, delivery_list(webhook=webhook), WebhookDeliveryOutput)
