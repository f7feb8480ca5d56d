from django.urls import path

from apps.approvals import views

urlpatterns = [
    path(
        "approvals/<id:approval_id>/decide/",
        views.approval_decide_view,
        name="approval-decide",
    ),
]
