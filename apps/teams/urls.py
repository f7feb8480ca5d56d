from django.urls import path

from apps.teams import views

urlpatterns = [
    path("", views.home, name="home"),
    path("teams/new/", views.team_new, name="team-new"),
    path("teams/<id:team_id>/members/", views.members, name="team-members"),
    path("teams/<id:team_id>/settings/", views.team_settings, name="team-settings"),
    path("teams/<id:team_id>/members/<id:member_id>/role/", views.member_role, name="member-role"),
    path(
        "teams/<id:team_id>/members/<id:member_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
    path(
        "teams/<id:team_id>/invitations/<id:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("invitations/", views.invitation_list, name="invitations"),
    path("invitations/link/<str:token>/", views.invitation_link, name="invitation-link"),
    path(
        "invitations/<id:invitation_id>/accept/",
        views.invitation_accept,
        name="invitation-accept",
    ),
    path(
        "invitations/<id:invitation_id>/decline/",
        views.invitation_decline,
        name="invitation-decline",
    ),
]
