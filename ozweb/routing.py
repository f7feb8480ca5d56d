from django.urls import path

from apps.runs.consumers import RunConsumer
from apps.threads.consumers import TeamConsumer, ThreadFeedConsumer, ThreadJSONConsumer

# django-stubs types path() for views only; channels routes a consumer's ASGI app through it.
websocket_urlpatterns = [
    path("ws/v1/threads/<int:thread_id>/", ThreadJSONConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/threads/<int:thread_id>/", ThreadFeedConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/teams/<int:team_id>/", TeamConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),  # type: ignore[arg-type]
]
