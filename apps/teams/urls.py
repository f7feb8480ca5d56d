from django.urls import path

from apps.teams import views

urlpatterns = [
    path("", views.home, name="home"),
    path("teams/new/", views.team_new, name="team-new"),
    path("teams/<int:team_id>/members/", views.members, name="team-members"),
    path("teams/<int:team_id>/settings/", views.team_settings, name="team-settings"),
    path(
        "teams/<int:team_id>/members/<int:member_id>/role/", views.member_role, name="member-role"
    ),
    path(
        "teams/<int:team_id>/members/<int:member_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
]
