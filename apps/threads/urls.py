from django.urls import path

from apps.threads import views

urlpatterns = [
    path("teams/<id:team_id>/", views.dashboard, name="dashboard-team"),
    path("teams/<id:team_id>/threads/new/", views.thread_new, name="thread-new"),
    path("threads/<id:thread_id>/", views.thread_page, name="thread"),
    path("threads/<id:thread_id>/older/", views.messages_older, name="thread-older"),
    path("threads/<id:thread_id>/messages/", views.message_create, name="message-create"),
    path(
        "threads/<id:thread_id>/deliveries/<id:delivery_id>/release/",
        views.delivery_release,
        name="delivery-release",
    ),
    path("agents/<id:agent_id>/direct/", views.agent_direct_thread, name="agent-direct"),
]
