from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.api import views

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("teams/", views.TeamListApi.as_view(), name="teams"),
    path("teams/<int:team_id>/", views.TeamDetailApi.as_view(), name="team"),
    path("teams/<int:team_id>/members/", views.TeamMemberListApi.as_view(), name="team-members"),
    path(
        "teams/<int:team_id>/members/<int:member_id>/",
        views.TeamMemberDetailApi.as_view(),
        name="team-member",
    ),
    path("teams/<int:team_id>/agents/", views.AgentListApi.as_view(), name="team-agents"),
    path("teams/<int:team_id>/threads/", views.ThreadListApi.as_view(), name="team-threads"),
    path("agents/<int:agent_id>/", views.AgentDetailApi.as_view(), name="agent"),
    path("threads/<int:thread_id>/", views.ThreadDetailApi.as_view(), name="thread"),
    path(
        "threads/<int:thread_id>/messages/",
        views.ThreadMessageListApi.as_view(),
        name="thread-messages",
    ),
    path("teams/<int:team_id>/artifacts/", views.ArtifactListApi.as_view(), name="team-artifacts"),
    path("artifacts/<int:artifact_id>/", views.ArtifactDetailApi.as_view(), name="artifact"),
    path(
        "artifacts/<int:artifact_id>/versions/",
        views.ArtifactVersionListApi.as_view(),
        name="artifact-versions",
    ),
    path(
        "artifacts/<int:artifact_id>/versions/<int:version>/",
        views.ArtifactVersionDetailApi.as_view(),
        name="artifact-version",
    ),
    path(
        "artifacts/<int:artifact_id>/versions/<int:version>/download/",
        views.ArtifactVersionDownloadApi.as_view(),
        name="artifact-version-download",
    ),
    path("teams/<int:team_id>/memory/", views.TeamMemoryListApi.as_view(), name="team-memory"),
    path(
        "teams/<int:team_id>/memory/<path:key>/",
        views.TeamMemoryDetailApi.as_view(),
        name="team-memory-note",
    ),
    path(
        "deliveries/<int:delivery_id>/release/",
        views.DeliveryReleaseApi.as_view(),
        name="delivery-release",
    ),
    path("runs/", views.RunListApi.as_view(), name="runs"),
    path("runs/<int:run_id>/", views.RunDetailApi.as_view(), name="run"),
    path("runs/<int:run_id>/cancel/", views.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<int:run_id>/messages/", views.RunMessageApi.as_view(), name="run-messages"),
    path("runs/<int:run_id>/events/", views.RunEventListApi.as_view(), name="run-events"),
]
