from django.urls import path

from apps.runs import views

urlpatterns = [
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:run_id>/reply/", views.run_reply, name="run-reply"),
    path("agents/<int:agent_id>/run/", views.agent_run, name="agent-run"),
    path("teams/<int:team_id>/demo/", views.scenario, name="scenario"),
]
