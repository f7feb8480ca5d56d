from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from apps.api import docs
from apps.api.views import (
    agents,
    approvals,
    artifacts,
    automations,
    deliveries,
    demo,
    invitations,
    members,
    memory,
    messages,
    notifications,
    providers,
    repos,
    reviews,
    runs,
    teams,
    threads,
    webhooks,
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
    # The inbox and outgoing webhooks (apps.notifications).
    path("notifications/", notifications.NotificationListApi.as_view(), name="notifications"),
    path(
        "notifications/read-all/",
        notifications.NotificationReadAllApi.as_view(),
        name="notifications-read-all",
    ),
    path(
        "notifications/<id:notification_id>/read/",
        notifications.NotificationReadApi.as_view(),
        name="notification-read",
    ),
    path(
        "teams/<id:team_id>/webhooks/", webhooks.TeamWebhookListApi.as_view(), name="team-webhooks"
    ),
    path("webhooks/<id:webhook_id>/", webhooks.WebhookDetailApi.as_view(), name="webhook"),
    path(
        "webhooks/<id:webhook_id>/deliveries/",
        webhooks.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    # Schedules and inbound triggers (apps.automations).
    path(
        "teams/<id:team_id>/schedules/",
        automations.ScheduleListApi.as_view(),
        name="team-schedules",
    ),
    path("schedules/<id:schedule_id>/", automations.ScheduleDetailApi.as_view(), name="schedule"),
    path(
        "schedules/<id:schedule_id>/firings/",
        automations.ScheduleFiringListApi.as_view(),
        name="schedule-firings",
    ),
    path(
        "teams/<id:team_id>/triggers/", automations.TriggerListApi.as_view(), name="team-triggers"
    ),
    path("triggers/<id:trigger_id>/", automations.TriggerDetailApi.as_view(), name="trigger"),
    path(
        "triggers/<id:trigger_id>/calls/",
        automations.TriggerCallListApi.as_view(),
        name="trigger-calls",
    ),
    path("runs/", runs.RunListApi.as_view(), name="runs"),
    path("runs/<id:run_id>/", runs.RunDetailApi.as_view(), name="run"),
    path("runs/<id:run_id>/cancel/", runs.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<id:run_id>/messages/", runs.RunMessageApi.as_view(), name="run-messages"),
    path("runs/<id:run_id>/events/", runs.RunEventListApi.as_view(), name="run-events"),
    path("approvals/", approvals.ApprovalListApi.as_view(), name="approvals"),
    path("approvals/<id:approval_id>/", approvals.ApprovalDetailApi.as_view(), name="approval"),
    # Repositories and changes (apps.repos).
    path("teams/<id:team_id>/repos/", repos.RepoListApi.as_view(), name="team-repos"),
    path("repos/<id:repo_id>/", repos.RepoDetailApi.as_view(), name="repo"),
    path("changes/", repos.ChangeListApi.as_view(), name="changes"),
    path("changes/<id:change_id>/", repos.ChangeDetailApi.as_view(), name="change"),
    path("changes/<id:change_id>/diff/", repos.ChangeDiffApi.as_view(), name="change-diff"),
    path(
        "changes/<id:change_id>/versions/",
        repos.ChangeVersionListApi.as_view(),
        name="change-versions",
    ),
    path("changes/<id:change_id>/merge/", repos.ChangeMergeApi.as_view(), name="change-merge"),
    path(
        "changes/<id:change_id>/send-conflict/",
        repos.ChangeSendConflictApi.as_view(),
        name="change-send-conflict",
    ),
    path("changes/<id:change_id>/close/", repos.ChangeCloseApi.as_view(), name="change-close"),
    # Review (apps.repos.reviews): line comments and reviews on changes and artifacts.
    path(
        "changes/<id:change_id>/comments/",
        reviews.ChangeCommentListApi.as_view(),
        name="change-comments",
    ),
    path(
        "changes/<id:change_id>/reviews/",
        reviews.ChangeReviewListApi.as_view(),
        name="change-reviews",
    ),
    path(
        "artifacts/<id:artifact_id>/comments/",
        reviews.ArtifactCommentListApi.as_view(),
        name="artifact-comments",
    ),
    path(
        "artifacts/<id:artifact_id>/reviews/",
        reviews.ArtifactReviewListApi.as_view(),
        name="artifact-reviews",
    ),
    path("comments/<id:comment_id>/", reviews.CommentDetailApi.as_view(), name="comment"),
    # Model providers, spend, budgets (the model gateway).
    path(
        "teams/<id:team_id>/providers/",
        providers.TeamProviderListApi.as_view(),
        name="team-providers",
    ),
    path("providers/<id:provider_id>/", providers.ProviderDetailApi.as_view(), name="provider"),
    path("teams/<id:team_id>/usage/", providers.TeamUsageApi.as_view(), name="team-usage"),
    path(
        "runs/<id:run_id>/budget/raise/",
        providers.RunBudgetRaiseApi.as_view(),
        name="run-budget-raise",
    ),
]
