from django.urls import path, re_path

from apps.core.consumers import NotFoundConsumer
from apps.notifications.consumers import NotificationConsumer
from apps.repos.review_consumers import ArtifactReviewConsumer, ChangeReviewConsumer
from apps.runs.consumers import RunConsumer
from apps.threads.consumers import TeamConsumer, ThreadFeedConsumer, ThreadJSONConsumer

# django-stubs types path() for views only; channels routes a consumer's ASGI app through it.
websocket_urlpatterns = [
    path("ws/v1/threads/<id:thread_id>/", ThreadJSONConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/threads/<id:thread_id>/", ThreadFeedConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/teams/<id:team_id>/", TeamConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/runs/<id:run_id>/", RunConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/changes/<id:change_id>/", ChangeReviewConsumer.as_asgi()),  # type: ignore[arg-type]
    path(
        "ws/artifacts/<id:artifact_id>/review/",
        ArtifactReviewConsumer.as_asgi(),  # type: ignore[arg-type]
    ),
    path("ws/notifications/", NotificationConsumer.as_asgi()),  # type: ignore[arg-type]
    # Any other path (an id out of range too) is closed with 4404 rather than failing.
    re_path(r"", NotFoundConsumer.as_asgi()),  # type: ignore[arg-type]
]
