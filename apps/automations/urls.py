from django.urls import path

from apps.automations import hooks, views

urlpatterns = [
    # The inbound triggers' door: the token in the path is the credential.
    path("hooks/<str:token>/", hooks.hook_receive, name="hook"),
    path("teams/<id:team_id>/schedules/", views.schedule_list, name="schedule-list"),
    path("teams/<id:team_id>/schedules/new/", views.schedule_new, name="schedule-new"),
    path("schedules/<id:schedule_id>/", views.schedule_detail, name="schedule-detail"),
    path("schedules/<id:schedule_id>/edit/", views.schedule_edit, name="schedule-edit"),
    path("schedules/<id:schedule_id>/delete/", views.schedule_delete, name="schedule-delete"),
    path("teams/<id:team_id>/triggers/", views.trigger_list, name="trigger-list"),
    path("teams/<id:team_id>/triggers/new/", views.trigger_new, name="trigger-new"),
    path("triggers/<id:trigger_id>/", views.trigger_detail, name="trigger-detail"),
    path("triggers/<id:trigger_id>/edit/", views.trigger_edit, name="trigger-edit"),
    path("triggers/<id:trigger_id>/delete/", views.trigger_delete, name="trigger-delete"),
]
