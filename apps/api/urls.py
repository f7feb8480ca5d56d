from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.api.views import (
    agents,
    artifacts,
    deliveries,
    demo,
    members,
    memory,
    messages,
    runs,
    teams,
    threads,
)

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("teams/", teams.TeamListApi.as_view(), name="teams"),
    path("teams/<int:team_id>/", teams.TeamDetailApi.as_view(), name="team"),
    path("teams/<int:team_id>/members/", members.TeamMemberListApi.as_view(), name="team-members"),
    path(
        "teams/<int:team_id>/members/<int:member_id>/",
        members.TeamMemberDetailApi.as_view(),
        name="team-member",
    ),
    path("teams/<int:team_id>/agents/", agents.AgentListApi.as_view(), name="team-agents"),
    path("teams/<int:team_id>/threads/", threads.ThreadListApi.as_view(), name="team-threads"),
    path("teams/<int:team_id>/demo/", demo.ScenarioApi.as_view(), name="team-demo"),
    path("agents/<int:agent_id>/", agents.AgentDetailApi.as_view(), name="agent"),
    path("threads/<int:thread_id>/", threads.ThreadDetailApi.as_view(), name="thread"),
    path(
        "threads/<int:thread_id>/messages/",
        messages.ThreadMessageListApi.as_view(),
        name="thread-messages",
    ),
    path(
        "teams/<int:team_id>/artifacts/",
        artifacts.ArtifactListApi.as_view(),
        name="team-artifacts",
    ),
    path("artifacts/<int:artifact_id>/", artifacts.ArtifactDetailApi.as_view(), name="artifact"),
    path(
        "artifacts/<int:artifact_id>/versions/",
        artifacts.ArtifactVersionListApi.as_view(),
        name="artifact-versions",
    ),
    path(
        "artifacts/<int:artifact_id>/versions/<int:version>/",
        artifacts.ArtifactVersionDetailApi.as_view(),
        name="artifact-version",
    ),
    path(
        "artifacts/<int:artifact_id>/versions/<int:version>/download/",
        artifacts.ArtifactVersionDownloadApi.as_view(),
        name="artifact-version-download",
    ),
    path("teams/<int:team_id>/memory/", memory.TeamMemoryListApi.as_view(), name="team-memory"),
    path(
        "teams/<int:team_id>/memory/<path:key>/",
        memory.TeamMemoryDetailApi.as_view(),
        name="team-memory-note",
    ),
    path(
        "deliveries/<int:delivery_id>/release/",
        deliveries.DeliveryReleaseApi.as_view(),
        name="delivery-release",
    ),
    path("runs/", runs.RunListApi.as_view(), name="runs"),
    path("runs/<int:run_id>/", runs.RunDetailApi.as_view(), name="run"),
    path("runs/<int:run_id>/cancel/", runs.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<int:run_id>/messages/", runs.RunMessageApi.as_view(), name="run-messages"),
    path("runs/<int:run_id>/events/", runs.RunEventListApi.as_view(), name="run-events"),
]
