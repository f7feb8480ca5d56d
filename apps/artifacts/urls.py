from django.urls import path

from apps.artifacts import views

urlpatterns = [
    path("teams/<int:team_id>/artifacts/", views.artifact_list, name="artifact-list"),
    path("artifacts/<int:artifact_id>/", views.artifact_detail, name="artifact-detail"),
    path("teams/<int:team_id>/memory/", views.memory_page, name="memory"),
    path("teams/<int:team_id>/memory/save/", views.memory_save, name="memory-save"),
    path("teams/<int:team_id>/memory/delete/", views.memory_delete, name="memory-delete"),
]
