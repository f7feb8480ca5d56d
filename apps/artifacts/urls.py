from django.urls import path

from apps.artifacts import views

urlpatterns = [
    path("teams/<id:team_id>/artifacts/", views.artifact_list, name="artifact-list"),
    path("artifacts/<id:artifact_id>/", views.artifact_detail, name="artifact-detail"),
    path("teams/<id:team_id>/memory/", views.memory_page, name="memory"),
    path("teams/<id:team_id>/memory/save/", views.memory_save, name="memory-save"),
    path("teams/<id:team_id>/memory/delete/", views.memory_delete, name="memory-delete"),
]
