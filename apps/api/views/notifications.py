"""/notifications/: the signed-in user's inbox (mentions, approvals and changes waiting, runs
they started that ended). Someone else's notification is a 404."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers_notifications import MarkedOutput, NotificationOutput
from apps.api.views.common import AuthenticatedRequest, bool_param, id_param, paginate
from apps.core.ids import ID_SCHEMA
from apps.notifications import inbox
from apps.notifications.selectors import access_notification, notification_list


class NotificationListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("unread", bool, description="true: only unread; false: only read."),
            OpenApiParameter("team", ID_SCHEMA, description="Only this team's."),
        ],
        responses=NotificationOutput(many=True),
        summary="My notifications, newest first",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        unread = bool_param(request, "unread") if request.query_params.get("unread") else None
        rows = notification_list(
            user=request.user, unread=unread, team_id=id_param(request, "team")
        )
        return paginate(request, self, rows, NotificationOutput)


class NotificationReadApi(APIView):
    @extend_schema(request=None, responses=NotificationOutput, summary="Mark a notification read")
    def post(self, request: AuthenticatedRequest, notification_id: int) -> Response:
        notification = access_notification(user=request.user, notification_id=notification_id)
        notification = inbox.notification_mark_read(user=request.user, notification=notification)
        return Response(NotificationOutput(notification).data)


class NotificationReadAllApi(APIView):
    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("team", ID_SCHEMA, description="Only this team's.")],
        responses=MarkedOutput,
        summary="Mark all my notifications read",
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        marked = inbox.notifications_mark_all_read(
            user=request.user, team_id=id_param(request, "team")
        )
        return Response({"marked": marked})
