from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from apps.api import docs
from apps.api.views import (
    agents,
    artifacts,
    deliveries,
    demo,
    invitations,
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
    path("docs/", docs.swagger_ui, name="docs"),
    path("redoc/", docs.redoc, name="redoc"),
    path("teams/", teams.TeamListApi.as_view(), name="teams"),
    path("teams/<id:team_id>/", teams.TeamDetailApi.as_view(), name="team"),
    path("teams/<id:team_id>/members/", members.TeamMemberListApi.as_view(), name="team-members"),
    path(
        "teams/<id:team_id>/members/<id:member_id>/",
        members.TeamMemberDetailApi.as_view(),
        name="team-member",
    ),
    path(
        "teams/<id:team_id>/invitations/",
        invitations.TeamInvitationListApi.as_view(),
        name="team-invitations",
    ),
    path(
        "teams/<id:team_id>/invitations/<id:invitation_id>/",
        invitations.TeamInvitationDetailApi.as_view(),
        name="team-invitation",
    ),
    path("invitations/", invitations.InvitationListApi.as_view(), name="invitations"),
    path(
        "invitations/<id:invitation_id>/accept/",
        invitations.InvitationAcceptApi.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<id:invitation_id>/decline/",
        invitations.InvitationDeclineApi.as_view(),
        name="invitation-decline",
    ),
    path("teams/<id:team_id>/agents/", agents.AgentListApi.as_view(), name="team-agents"),
    path("teams/<id:team_id>/threads/", threads.ThreadListApi.as_view(), name="team-threads"),
    path("teams/<id:team_id>/demo/", demo.ScenarioApi.as_view(), name="team-demo"),
    path("agents/<id:agent_id>/", agents.AgentDetailApi.as_view(), name="agent"),
    path("threads/<id:thread_id>/", threads.ThreadDetailApi.as_view(), name="thread"),
    path(
        "threads/<id:thread_id>/messages/",
        messages.ThreadMessageListApi.as_view(),
        name="thread-messages",
    ),
    path(
        "teams/<id:team_id>/artifacts/",
        artifacts.ArtifactListApi.as_view(),
        name="team-artifacts",
    ),
    path("artifacts/<id:artifact_id>/", artifacts.ArtifactDetailApi.as_view(), name="artifact"),
    path(
        "artifacts/<id:artifact_id>/versions/",
        artifacts.ArtifactVersionListApi.as_view(),
        name="artifact-versions",
    ),
    path(
        "artifacts/<id:artifact_id>/versions/<id:version>/",
        artifacts.ArtifactVersionDetailApi.as_view(),
        name="artifact-version",
    ),
    path(
        "artifacts/<id:artifact_id>/versions/<id:version>/download/",
        artifacts.ArtifactVersionDownloadApi.as_view(),
        name="artifact-version-download",
    ),
    path("teams/<id:team_id>/memory/", memory.TeamMemoryListApi.as_view(), name="team-memory"),
    path(
        "teams/<id:team_id>/memory/<path:key>/",
        memory.TeamMemoryDetailApi.as_view(),
        name="team-memory-note",
    ),
    path(
        "deliveries/<id:delivery_id>/release/",
        deliveries.DeliveryReleaseApi.as_view(),
        name="delivery-release",
    ),
    path("runs/", runs.RunListApi.as_view(), name="runs"),
    path("runs/<id:run_id>/", runs.RunDetailApi.as_view(), name="run"),
    path("runs/<id:run_id>/cancel/", runs.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<id:run_id>/messages/", runs.RunMessageApi.as_view(), name="run-messages"),
    path("runs/<id:run_id>/events/", runs.RunEventListApi.as_view(), name="run-events"),
]
