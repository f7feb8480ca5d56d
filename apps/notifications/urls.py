from django.urls import path

from apps.notifications import views

urlpatterns = [
    path("notifications/", views.inbox, name="notifications"),
    path("notifications/read-all/", views.read_all, name="notifications-read-all"),
    path(
        "notifications/<id:notification_id>/open/",
        views.notification_open,
        name="notification-open",
    ),
    path(
        "notifications/<id:notification_id>/read/",
        views.notification_read,
        name="notification-read",
    ),
    path("teams/<id:team_id>/webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<id:webhook_id>/", views.webhook_detail, name="webhook-detail"),
    path("webhooks/<id:webhook_id>/delete/", views.webhook_delete, name="webhook-delete"),
]
