"""/deliveries/{id}/release/: let a held delivery through."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import DeliveryOutput
from apps.api.views.common import AuthenticatedRequest
from apps.threads.deliveries import delivery_release
from apps.threads.events import delivery_payload
from apps.threads.selectors import access_delivery


class DeliveryReleaseApi(APIView):
    @extend_schema(
        request=None,
        responses=DeliveryOutput,
        description="Let a delivery held at the team's hop limit through to its agent.",
    )
    def post(self, request: AuthenticatedRequest, delivery_id: int) -> Response:
        actor, delivery = access_delivery(user=request.user, delivery_id=delivery_id)
        delivery = delivery_release(actor=actor, delivery=delivery)
        delivery.refresh_from_db(fields=["state", "held", "reason", "run", "updated_at"])
        return Response(DeliveryOutput(delivery_payload(delivery)).data)
