from django.urls import path

from apps.runs.consumers import RunConsumer
from apps.teams.consumers import TeamConsumer
from apps.threads.consumers import ThreadFeedConsumer, ThreadJSONConsumer

websocket_urlpatterns = [
    path("ws/v1/threads/<int:thread_id>/", ThreadJSONConsumer.as_asgi()),
    path("ws/threads/<int:thread_id>/", ThreadFeedConsumer.as_asgi()),
    path("ws/teams/<int:team_id>/", TeamConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
]
