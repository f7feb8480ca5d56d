"""The review pages: a change (`/changes/{id}/`) and a text artifact version's lines
(`/artifacts/{id}/review/`). Comments post with htmx and reach every viewer over the page's
websocket (apps.repos.review_consumers); reviews, merge and close are plain form posts.

The access_<entity> selectors raise NotFound and PermissionDenied: the 404 and 403 pages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.artifacts.models import Artifact
from apps.artifacts.selectors import access_artifact, artifact_version_list
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.http import AuthenticatedHttpRequest
from apps.core.ids import bounded_int
from apps.repos import git, review_events, reviews, services
from apps.repos.diffs import FileDiff
from apps.repos.models import Change, ChangeStatus, ChangeVersion, ReviewComment, Verdict
from apps.repos.review_page import (
    DIFF_MARKER,
    Anchor,
    code_cells,
    render_files,
    render_text_lines,
    splice_files,
)
from apps.repos.review_selectors import (
    access_comment,
    comment_list,
    last_review_version,
    open_changes_with_review_state,
    review_list,
    version_diff,
)
from apps.repos.selectors import access_change, change_versions
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team
from apps.threads.selectors import access_thread


def _threads(
    comments: list[ReviewComment], *, version: int, shows: Callable[[Anchor], bool]
) -> tuple[dict[Anchor, str], list[ReviewComment]]:
    """The comment threads of `version` under their lines (HTML by anchor), and the root
    comments that have no line on this page (other versions, or not in this comparison)."""
    replies: dict[int, list[ReviewComment]] = defaultdict(list)
    for comment in comments:
        if comment.reply_to_id is not None:
            replies[comment.reply_to_id].append(comment)
    placed: dict[Anchor, list[str]] = defaultdict(list)
    elsewhere: list[ReviewComment] = []
    for root in comments:
        if root.reply_to_id is not None:
            continue
        anchor = (root.path, root.side, root.end_line or root.line)
        if root.version != version or not shows(anchor):
            elsewhere.append(root)
            continue
        placed[anchor].append(
            render_to_string(
                "repos/review.html#thread", {"root": root, "replies": replies.get(root.pk, [])}
            )
        )
    return {anchor: "".join(parts) for anchor, parts in placed.items()}, elsewhere


def _diff_shows(files: list[FileDiff]) -> Callable[[Anchor], bool]:
    """Whether the diff has the anchor's line (looked at only for files with comments)."""
    by_path = {diff.path: diff for diff in files}

    @cache
    def lines(path: str, side: str) -> frozenset[int]:
        diff = by_path.get(path)
        return frozenset(diff.lines_on(side)) if diff is not None else frozenset()

    return lambda anchor: anchor[2] in lines(anchor[0], anchor[1])


def _merge_state(change: Change) -> dict[str, Any]:
    if change.status != ChangeStatus.OPEN:
        return {"checked": False, "conflicts": []}
    try:
        conflicts = git.merge_conflicts(change.repo, branch=change.branch, into=change.base)
    except git.GitError as exc:
        return {"checked": False, "conflicts": [], "error": str(exc)}
    return {"checked": True, "conflicts": conflicts}


def _compared(
    request: AuthenticatedHttpRequest, change: Change
) -> tuple[list[ChangeVersion], ChangeVersion, ChangeVersion | None]:
    """The change's versions, the one shown (`?version=`, default latest) and the one it is
    compared with (`?from=`, default none: its base); an unknown number is a 404."""
    versions = change_versions(change)
    by_number = {v.number: v for v in versions}
    wanted = bounded_int(request.GET.get("version"))
    version = by_number.get(wanted if wanted is not None else change.version)
    from_number = bounded_int(request.GET.get("from"))
    against = by_number.get(from_number) if from_number is not None else None
    if version is None or (from_number is not None and against is None):
        raise Http404
    return versions, version, against


@login_required
@require_GET
def change_review(request: AuthenticatedHttpRequest, change_id: int) -> HttpResponse:
    membership, change = access_change(user=request.user, change_id=change_id)
    versions, version, against = _compared(request, change)
    split = request.GET.get("view") == "split"
    files = version_diff(change=change, version=version, against=against)
    comments = list(comment_list(change=change))
    threads, elsewhere = _threads(comments, version=version.number, shows=_diff_shows(files))
    last_reviewed = last_review_version(change=change, user=request.user)
    query = {"version": version.number, **({"from": against.number} if against else {})}
    rendered = render_files(
        files,
        split=split,
        threads=threads,
        diff_key=f"{change.repo_id}:{version.base_sha if against is None else against.head}:"
        + version.head,
        # The rest of a big, never-seen change is coloured as it scrolls in (change_highlight).
        budget_seconds=settings.OZWEB_REVIEW_HIGHLIGHT_MS / 1000,
    )
    response = render(
        request,
        "repos/review.html",
        {
            "team": membership.team,
            "membership": membership,
            "change": change,
            "versions": versions,
            "version": version,
            "against": against,
            "split": split,
            "files": rendered,
            "diff_marker": DIFF_MARKER,
            "additions": sum(f.additions for f in files),
            "deletions": sum(f.deletions for f in files),
            "elsewhere": elsewhere,
            "reviews": list(review_list(change=change)),
            "pending": sum(1 for c in comments if c.state == "pending"),
            "last_reviewed": last_reviewed,
            "since_review": last_reviewed is not None and last_reviewed < change.version,
            "merge": _merge_state(change),
            "can_review": membership.has_role(Role.MEMBER) and change.status == ChangeStatus.OPEN,
            "view_query": "&".join(f"{k}={v}" for k, v in query.items()),
            "comment_url": reverse("review-change-comment", args=[change.pk]),
            "highlight_url": reverse("review-change-highlight", args=[change.pk])
            + "?"
            + "&".join(
                f"{k}={v}" for k, v in {**query, **({"view": "split"} if split else {})}.items()
            ),
            "ws_url": f"/ws/changes/{change.pk}/",
        },
    )
    response.content = splice_files(response.content, rendered, split=split)
    return response


@login_required
@require_GET
def change_highlight(request: AuthenticatedHttpRequest, change_id: int) -> JsonResponse:
    """The colours of one file the review page showed plain (`?file=` its index, with the
    page's `version`, `from` and `view`): its code cells' HTML in row order."""
    _, change = access_change(user=request.user, change_id=change_id)
    _, version, against = _compared(request, change)
    files = version_diff(change=change, version=version, against=against)
    index = bounded_int(request.GET.get("file"), low=0)
    if index is None or not 0 <= index < len(files):
        raise Http404
    cells = code_cells(files[index], split=request.GET.get("view") == "split")
    return JsonResponse({"file": index, "path": files[index].path, "cells": cells})


def _comment_answer(request: AuthenticatedHttpRequest, comment: ReviewComment) -> HttpResponse:
    """The new comment's fragment (the page puts it under its line; the websocket push of the
    same comment then finds it there)."""
    return HttpResponse(review_events.comment_html(comment))


def _comment_error(exc: ServiceError) -> HttpResponse:
    response = HttpResponse(exc.message, status=422, content_type="text/plain; charset=utf-8")
    response["HX-Retarget"] = "#rc-form-error"
    response["HX-Reswap"] = "textContent"
    return response


def _int(request: AuthenticatedHttpRequest, name: str) -> int | None:
    return bounded_int(request.POST.get(name) or None, high=2**31 - 1)


def _comment_input(request: AuthenticatedHttpRequest) -> reviews.CommentInput:
    """The line comment form of the change and artifact review pages."""
    return reviews.CommentInput(
        line=_int(request, "line") or 0,
        body=request.POST.get("body", ""),
        end_line=_int(request, "end_line"),
        reply_to=bounded_int(request.POST.get("reply_to") or None),
    )


@login_required
@require_POST
def change_comment(request: AuthenticatedHttpRequest, change_id: int) -> HttpResponse:
    actor, change = access_change(user=request.user, change_id=change_id)
    try:
        comment = reviews.change_comment_create(
            actor=actor,
            change=change,
            comment=_comment_input(request),
            path=request.POST.get("path", ""),
            version=_int(request, "version"),
            side=request.POST.get("side", "new"),
        )
    except PermissionDenied:
        raise
    except ServiceError as exc:
        return _comment_error(exc)
    return _comment_answer(request, comment)


@login_required
@require_POST
def comment_resolve(request: AuthenticatedHttpRequest, comment_id: int) -> HttpResponse:
    actor, comment = access_comment(user=request.user, comment_id=comment_id)
    reviews.comment_resolve(actor=actor, comment=comment)
    return HttpResponse(status=204)  # every viewer gets the resolved thread over the websocket


def _review_args(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    verdict = request.POST.get("verdict", "")
    if verdict not in Verdict.values:
        raise ServiceError("Choose Approve, Request changes or Comment.", field="verdict")
    return {
        "verdict": verdict,
        "body": request.POST.get("body", ""),
        "send": request.POST.get("send") == "on" or None,
    }


@login_required
@require_POST
def change_review_submit(request: AuthenticatedHttpRequest, change_id: int) -> HttpResponse:
    actor, change = access_change(user=request.user, change_id=change_id)
    try:
        review = reviews.change_review_create(actor=actor, change=change, **_review_args(request))
    except PermissionDenied:
        raise
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        sent = f" and sent to @{change.agent.handle}" if review.message_id else ""
        messages.success(request, f"Review recorded{sent}.")
    return redirect("review-change", change_id=change.pk)


@login_required
@require_POST
def change_merge(request: AuthenticatedHttpRequest, change_id: int) -> HttpResponse:
    actor, change = access_change(user=request.user, change_id=change_id)
    try:
        services.change_merge(actor=actor, change=change)
    except services.MergeConflict as exc:
        messages.error(request, f"{exc.message} Conflicts: {', '.join(exc.conflicts)}.")
    except PermissionDenied:
        raise
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Merged into {change.base}.")
    return redirect("review-change", change_id=change.pk)


class _ChangeAction(Protocol):
    def __call__(self, *, actor: Membership, change: Change) -> object: ...


def _change_action_post(
    request: AuthenticatedHttpRequest,
    change_id: int,
    action: _ChangeAction,
    *,
    success: Callable[[Change], str] | None = None,
) -> HttpResponse:
    """A form post that acts on a change, back to the change's page: the service's refusal is
    a message on that page (PermissionDenied rises to the 403 page), as is `success`."""
    actor, change = access_change(user=request.user, change_id=change_id)
    try:
        action(actor=actor, change=change)
    except PermissionDenied:
        raise
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        if success is not None:
            messages.success(request, success(change))
    return redirect("review-change", change_id=change.pk)


@login_required
@require_POST
def change_close(request: AuthenticatedHttpRequest, change_id: int) -> HttpResponse:
    return _change_action_post(request, change_id, services.change_close)


@login_required
@require_POST
def change_send_conflict(request: AuthenticatedHttpRequest, change_id: int) -> HttpResponse:
    return _change_action_post(
        request,
        change_id,
        services.change_send_conflict,
        success=lambda change: f"Sent the conflict to @{change.agent.handle}.",
    )


# -- open changes on the dashboard and in a thread (loaded by htmx from those pages) --------


@login_required
@require_GET
def team_changes_panel(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id)
    changes = open_changes_with_review_state(team=membership.team)
    return render(request, "repos/changes_panel.html", {"changes": changes, "in_thread": False})


@login_required
@require_GET
def thread_changes_panel(request: AuthenticatedHttpRequest, thread_id: int) -> HttpResponse:
    membership, thread = access_thread(user=request.user, thread_id=thread_id)
    changes = open_changes_with_review_state(team=membership.team, thread_id=thread.pk)
    if not changes:
        return HttpResponse(status=204)
    return render(request, "repos/changes_panel.html", {"changes": changes, "in_thread": True})


# -- artifacts -----------------------------------------------------------------------------


@login_required
@require_GET
def artifact_review(request: AuthenticatedHttpRequest, artifact_id: int) -> HttpResponse:
    membership, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
    versions = list(artifact_version_list(artifact=artifact))
    wanted = bounded_int(request.GET.get("v"))
    selected = next((v for v in versions if v.version == wanted), versions[0] if versions else None)
    if selected is None or (wanted is not None and selected.version != wanted):
        raise Http404
    comments = list(comment_list(artifact=artifact))
    try:
        text = reviews.artifact_text(selected)
    except ServiceError as exc:
        text, not_text = "", exc.message
    else:
        not_text = ""
    count = reviews.line_count(text)
    threads, elsewhere = _threads(
        comments,
        version=selected.version,
        shows=lambda anchor: anchor[0] == artifact.name and 1 <= anchor[2] <= count,
    )
    return render(
        request,
        "repos/artifact_review.html",
        {
            "team": membership.team,
            "membership": membership,
            "artifact": artifact,
            "versions": versions,
            "selected": selected,
            "not_text": not_text,
            "rows": render_text_lines(text, path=artifact.name, threads=threads),
            "elsewhere": elsewhere,
            "reviews": list(review_list(artifact=artifact)),
            "can_review": membership.has_role(Role.MEMBER),
            "comment_url": reverse("review-artifact-comment", args=[artifact.pk]),
            "ws_url": f"/ws/artifacts/{artifact.pk}/review/",
        },
    )


@login_required
@require_POST
def artifact_comment(request: AuthenticatedHttpRequest, artifact_id: int) -> HttpResponse:
    actor, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
    try:
        comment = reviews.artifact_comment_create(
            actor=actor,
            artifact=artifact,
            comment=_comment_input(request),
            version=_int(request, "version"),
        )
    except PermissionDenied:
        raise
    except ServiceError as exc:
        return _comment_error(exc)
    return _comment_answer(request, comment)


@login_required
@require_POST
def artifact_review_submit(request: AuthenticatedHttpRequest, artifact_id: int) -> HttpResponse:
    actor, artifact = access_artifact(user=request.user, artifact_id=artifact_id)
    version = _int(request, "version")
    try:
        review = reviews.artifact_review_create(
            actor=actor, artifact=artifact, version=version, **_review_args(request)
        )
    except PermissionDenied:
        raise
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Review recorded" + (" and sent." if review.message_id else "."))
    return redirect(_artifact_review_url(artifact, version))


def _artifact_review_url(artifact: Artifact, version: int | None) -> str:
    url = reverse("review-artifact", args=[artifact.pk])
    return f"{url}?v={version}" if version else url
