"""Realtime events of the review pages: group names and the fragments they push.

Everyone viewing a change's (or an artifact's) review page is in one group; a new or changed
comment is rendered once and pushed to all of them, and the page's script puts it under its
line (or replaces the copy it has).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string

from apps.repos.review_selectors import comment_list

if TYPE_CHECKING:
    from apps.repos.models import Review, ReviewComment


def change_group(change_id: int) -> str:
    return f"change-{change_id}.review"


def artifact_group(artifact_id: int) -> str:
    return f"artifact-{artifact_id}.review"


def review_group(comment: ReviewComment) -> str:
    if comment.change_id is not None:
        return change_group(comment.change_id)
    assert comment.artifact_id is not None
    return artifact_group(comment.artifact_id)


def comment_html(comment: ReviewComment) -> str:
    """A root comment as its thread (with its replies), a reply as itself."""
    if comment.reply_to_id is not None:
        return render_to_string("repos/review.html#comment", {"comment": comment})
    replies = list(comment.replies.select_related("author").order_by("created_at", "id"))
    return render_to_string("repos/review.html#thread", {"root": comment, "replies": replies})


def comment_event(comment: ReviewComment) -> dict[str, Any]:
    html = f'<div id="rc-incoming" hx-swap-oob="beforeend">{comment_html(comment)}</div>'
    if comment.change_id is not None:
        # The change page's "N pending comments" line, as of this comment.
        pending = comment_list(change=comment.change, state="pending").count()
        html += render_to_string(
            "repos/review.html#pending_count", {"pending": pending, "oob": True}
        )
    return {"type": "review.html", "html": html}


def review_event(review: Review) -> dict[str, Any]:
    html = render_to_string("repos/review.html#review_row", {"review": review})
    return {
        "type": "review.html",
        "html": f'<ul id="review-list" hx-swap-oob="beforeend">{html}</ul>',
    }
