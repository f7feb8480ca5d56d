from django.urls import path

from apps.repos import views

urlpatterns = [
    path("changes/<id:change_id>/", views.change_review, name="review-change"),
    path(
        "changes/<id:change_id>/highlight/", views.change_highlight, name="review-change-highlight"
    ),
    path("changes/<id:change_id>/comment/", views.change_comment, name="review-change-comment"),
    path("changes/<id:change_id>/review/", views.change_review_submit, name="review-change-submit"),
    path("changes/<id:change_id>/merge/", views.change_merge, name="review-change-merge"),
    path("changes/<id:change_id>/close/", views.change_close, name="review-change-close"),
    path(
        "changes/<id:change_id>/send-conflict/",
        views.change_send_conflict,
        name="review-change-send-conflict",
    ),
    path(
        "review-comments/<id:comment_id>/resolve/",
        views.comment_resolve,
        name="review-comment-resolve",
    ),
    path("artifacts/<id:artifact_id>/review/", views.artifact_review, name="review-artifact"),
    path(
        "artifacts/<id:artifact_id>/review/comment/",
        views.artifact_comment,
        name="review-artifact-comment",
    ),
    path(
        "artifacts/<id:artifact_id>/review/submit/",
        views.artifact_review_submit,
        name="review-artifact-submit",
    ),
    path("teams/<id:team_id>/changes/", views.team_changes_panel, name="review-team-changes"),
    path(
        "threads/<id:thread_id>/changes/", views.thread_changes_panel, name="review-thread-changes"
    ),
]
