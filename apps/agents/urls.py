from django.urls import path

from apps.agents import views

urlpatterns = [
    path("teams/<id:team_id>/agents/", views.agent_list, name="agent-list"),
    path("teams/<id:team_id>/agents/new/", views.agent_new, name="agent-new"),
    path("agents/<id:agent_id>/", views.agent_detail, name="agent-detail"),
    path("agents/<id:agent_id>/edit/", views.agent_edit, name="agent-edit"),
]
