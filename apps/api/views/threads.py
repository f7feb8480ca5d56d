"""/teams/{id}/threads/ and /threads/{id}/."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents.selectors import agent_get
from apps.api.serializers import ThreadOutput
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.core.errors import ServiceError
from apps.core.ids import id_field
from apps.teams.selectors import access_team
from apps.threads import services
from apps.threads.selectors import access_thread, thread_list, thread_with_unread

# As apps.threads.services cleans a channel name: stripped, # dropped, lowercased, spaces
# to -; then 1–80 of a-z 0-9 _ -, not dm-.
CHANNEL_NAME_INPUT = (
    r"^\s*#*(?![dD][mM](?:-| +\S))"
    r"[A-Za-z0-9\u212a](?:[A-Za-z0-9\u212a_ -]{0,78}[A-Za-z0-9\u212a_-])?\s*$"
)


class ThreadListApi(APIView):
    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ThreadCreateInput"

        kind = serializers.ChoiceField(choices=["channel", "direct"], default="channel")
        name = serializers.RegexField(
            CHANNEL_NAME_INPUT,
            max_length=81,
            required=False,
            trim_whitespace=False,
            help_text="Lowercased, # and surrounding space dropped, spaces become -.",
            error_messages={
                "invalid": "A channel name is 1–80 lowercase letters, digits, - or _ "
                "(not starting with dm-)."
            },
        )
        topic = serializers.CharField(max_length=250, required=False, allow_blank=True, default="")
        agent = id_field(required=False, help_text="For a direct thread.")

    @extend_schema(responses=ThreadOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        threads = thread_list(team=membership.team, user=request.user)
        return paginate(request, self, threads, ThreadOutput)

    @extend_schema(request=Input, responses={201: ThreadOutput})
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(self.Input, request.data)
        if data["kind"] == "direct":
            if "agent" not in data:
                raise ServiceError("A direct thread needs an agent.", field="agent")
            agent = agent_get(team=actor.team, agent_id=data["agent"])
            thread = services.thread_direct_get_or_create(actor=actor, agent=agent)
        else:
            if not data.get("name"):
                raise ServiceError("A channel needs a name.", field="name")
            thread = services.thread_create(actor=actor, name=data["name"], topic=data["topic"])
        thread = thread_with_unread(thread=thread, user=request.user)
        return Response(ThreadOutput(thread).data, status=status.HTTP_201_CREATED)


class ThreadDetailApi(APIView):
    @extend_schema(responses=ThreadOutput)
    def get(self, request: AuthenticatedRequest, thread_id: int) -> Response:
        _, thread = access_thread(user=request.user, thread_id=thread_id)
        thread = thread_with_unread(thread=thread, user=request.user)
        return Response(ThreadOutput(thread).data)
