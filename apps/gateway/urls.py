from django.urls import path

from apps.gateway import views

urlpatterns = [
    path("teams/<id:team_id>/providers/", views.provider_list_page, name="providers"),
    path("providers/<id:provider_id>/edit/", views.provider_edit_page, name="provider-edit"),
    path("providers/<id:provider_id>/delete/", views.provider_delete_page, name="provider-delete"),
    path("teams/<id:team_id>/usage/", views.usage_page, name="usage"),
    path("runs/<id:run_id>/budget/raise/", views.budget_raise_page, name="budget-raise"),
]
