"""/threads/{id}/messages/: a thread's messages by seq, and posting one."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers import MessageOutput
from apps.api.views.common import (
    MAX_PAGE,
    AuthenticatedRequest,
    int_param,
    seq_window_parameters,
    validated,
)
from apps.core.patterns import NOT_BLANK
from apps.threads import services
from apps.threads.selectors import access_thread, messages_after


class ThreadMessageListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "MessageCreateInput"

        body = serializers.RegexField(
            NOT_BLANK, trim_whitespace=False, error_messages={"invalid": "Write something first."}
        )

    @extend_schema(
        parameters=seq_window_parameters(rows="messages", max_limit=MAX_PAGE, default=50),
        responses=inline_serializer(
            "MessagePage",
            {
                "results": MessageOutput(many=True),
                "next": serializers.URLField(allow_null=True),
                "last_seq": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: AuthenticatedRequest, thread_id: int) -> Response:
        _, thread = access_thread(user=request.user, thread_id=thread_id)
        since = int_param(request, "since", default=0, low=0)
        limit = int_param(request, "limit", default=50, low=1, high=MAX_PAGE)
        messages = messages_after(thread=thread, since=since, limit=limit)
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
    def post(self, request: AuthenticatedRequest, thread_id: int) -> Response:
        actor, thread = access_thread(user=request.user, thread_id=thread_id)
        data = validated(self.Input, request.data)
        # No transaction around it: the append commits by itself, so the thread's row is
        # locked only while the database runs it (services.messages_append).
        message = services.message_post(actor=actor, thread=thread, body=data["body"])
        return Response(MessageOutput(message).data, status=status.HTTP_201_CREATED)
