"""Reads for the review half: a version's parsed diff, comments and reviews, scoped to the
actor's team through the access_<entity> helpers (another team's id is a 404)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from apps.artifacts.models import Artifact
from apps.core.errors import NotFound, ServiceError
from apps.repos import git
from apps.repos.diffs import FileDiff, parse_diff
from apps.repos.models import (
    Change,
    ChangeStatus,
    ChangeVersion,
    CommentState,
    Review,
    ReviewComment,
)
from apps.repos.selectors import change_version_get
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team


def access_comment(
    *, user: User | AnonymousUser, comment_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, ReviewComment]:
    comment = ReviewComment.objects.filter(pk=comment_id).first()
    if comment is None:
        raise NotFound()
    membership = access_team(user=user, team_id=comment.team_id, role=role)
    return membership, comment


def review_version_get(*, change: Change, number: int | None = None) -> ChangeVersion:
    """A version of the change (the newest when `number` is None); a number it does not have
    is a 400 naming the input, not a 404 of the change."""
    try:
        return change_version_get(change=change, number=number)
    except NotFound as exc:
        raise ServiceError(exc.message, field="version") from None


@dataclass(unsafe_hash=True)
class _RepoKey:
    """What git.diff_text reads of a repository, hashable for the cache below."""

    pk: int
    team_id: int
    default_branch: str


@lru_cache(maxsize=16)
def _parsed_diff(repo: _RepoKey, start: str, end: str) -> tuple[FileDiff, ...]:
    # Two commits' diff never changes: the page and each comment's line check share one
    # parse (a 20,000-line diff is ~0.1 s of git and as much of parsing). Read only.
    return tuple(parse_diff(git.diff_text(repo, start, end)))


def version_diff(
    *, change: Change, version: ChangeVersion, against: ChangeVersion | None = None
) -> list[FileDiff]:
    """The parsed diff of `version` against its base, or against another version's head."""
    start = against.head if against is not None else version.base_sha
    key = _RepoKey(change.repo.pk, change.repo.team_id, change.repo.default_branch)
    return list(_parsed_diff(key, start, version.head))


def comment_list(
    *, change: Change | None = None, artifact: Artifact | None = None, state: str | None = None
) -> QuerySet[ReviewComment]:
    comments = ReviewComment.objects.select_related("author")
    if change is not None:
        comments = comments.filter(change=change)
    elif artifact is not None:
        comments = comments.filter(artifact=artifact)
    else:
        return comments.none()
    if state:
        comments = comments.filter(state=state)
    return comments.order_by("created_at", "id")


def review_list(
    *, change: Change | None = None, artifact: Artifact | None = None
) -> QuerySet[Review]:
    reviews = Review.objects.select_related("author")
    if change is not None:
        return reviews.filter(change=change).order_by("created_at", "id")
    if artifact is not None:
        return reviews.filter(artifact=artifact).order_by("created_at", "id")
    return reviews.none()


def last_review_version(*, change: Change, user: User) -> int | None:
    """The version of `user`'s latest review of the change ("changes since my last review")."""
    return (
        Review.objects.filter(change=change, author=user)
        .order_by("-created_at", "-id")
        .values_list("version", flat=True)
        .first()
    )


def open_changes_with_review_state(*, team: Team, thread_id: int | None = None) -> list[Change]:
    """The team's open changes (of one thread, if given), newest first, each annotated with
    `review_state` (the latest verdict, "" for none) and `pending_comments`: two subqueries,
    one statement."""
    latest = Review.objects.filter(change=OuterRef("pk")).order_by("-created_at", "-id")
    pending = (
        ReviewComment.objects.filter(change=OuterRef("pk"), state=CommentState.PENDING)
        .order_by()
        .values("change")
        .annotate(n=Count("id"))
        .values("n")
    )
    changes = Change.objects.filter(team=team, status=ChangeStatus.OPEN)
    if thread_id is not None:
        changes = changes.filter(thread_id=thread_id)
    return list(
        changes.select_related("agent", "repo")
        .annotate(
            review_state=Coalesce(Subquery(latest.values("verdict")[:1]), Value("")),
            pending_comments=Coalesce(Subquery(pending), Value(0)),
        )
        .order_by("-updated_at", "-id")[:50]
    )
