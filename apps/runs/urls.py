from django.urls import path

from apps.runs import views

urlpatterns = [
    path("runs/<id:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<id:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<id:run_id>/reply/", views.run_reply, name="run-reply"),
    path("agents/<id:agent_id>/run/", views.agent_run, name="agent-run"),
    path("agents/<id:agent_id>/archive/", views.agent_archive, name="agent-archive"),
    path("teams/<id:team_id>/demo/", views.scenario, name="scenario"),
]
