"""The agent verbs of changes and review feedback: list_changes, get_change (with its diff)
and get_review_comments, in the run's team only."""

from __future__ import annotations

from typing import Any

from apps.agentapi.context import AgentContext
from apps.artifacts import selectors as artifact_selectors
from apps.core.errors import ServiceError
from apps.repos import git
from apps.repos.models import ChangeStatus, ReviewComment
from apps.repos.selectors import (
    change_get,
    change_list,
    change_run_ids,
    change_version_get,
    change_versions,
)

# A diff larger than this is cut (the agent has the branch in its working copy for the rest).
DIFF_MAX_CHARS = 200_000
CHANGE_LIST_LIMIT = 100


def _change_payload(change: Any) -> dict[str, Any]:
    versions = change_versions(change)
    return {
        "id": change.pk,
        "repo": change.repo_id,
        "repo_name": change.repo.name,
        "title": change.title,
        "branch": change.branch,
        "base": change.base,
        "status": change.status,
        "version": change.version,
        "head": change.head,
        "agent": change.agent.handle,
        "thread": change.thread_id,
        "runs": change_run_ids(change),
        "files": list(versions[-1].files) if versions else [],
        "created_at": change.created_at.isoformat(),
        "updated_at": change.updated_at.isoformat(),
    }


def list_changes(
    ctx: AgentContext, *, status: str = "open", mine: bool = False
) -> list[dict[str, Any]]:
    if status != "all" and status not in ChangeStatus.values:
        raise ServiceError("status is open, merged, closed or all.", field="status")
    changes = change_list(
        team=ctx.team,
        agent_id=ctx.agent.pk if mine else None,
        status=None if status == "all" else status,
    )
    return [_change_payload(c) for c in changes[:CHANGE_LIST_LIMIT]]


def get_change(
    ctx: AgentContext, *, change_id: int, version: int | None = None, since: int | None = None
) -> dict[str, Any]:
    change = change_get(team=ctx.team, change_id=change_id)
    shown = change_version_get(change=change, number=version)
    start = (
        change_version_get(change=change, number=since).head
        if since is not None
        else shown.base_sha
    )
    diff = git.diff_text(change.repo, start, shown.head)
    return {
        **_change_payload(change),
        "diff_version": shown.number,
        "diff_since": since,
        "diff": diff[:DIFF_MAX_CHARS],
        "diff_truncated": len(diff) > DIFF_MAX_CHARS,
    }


def _comment_payload(comment: ReviewComment) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "version": comment.version,
        "path": comment.path,
        "line": comment.line,
        "end_line": comment.end_line,
        "side": comment.side,
        "body": comment.body,
        "state": comment.state,
        "context": comment.context,
        "reply_to": comment.reply_to_id,
        "author": comment.author.get_username() if comment.author else None,
        "created_at": comment.created_at.isoformat(),
    }


def get_review_comments(
    ctx: AgentContext,
    *,
    change_id: int | None = None,
    artifact: str = "",
    state: str = "",
) -> list[dict[str, Any]]:
    if change_id is None and not artifact:
        raise ServiceError("Give change_id or artifact (a name).", field="change_id")
    if change_id is not None and artifact:
        raise ServiceError("Give change_id or artifact (a name), not both.", field="change_id")
    comments = ReviewComment.objects.filter(team=ctx.team).select_related("author")
    if change_id is not None:
        comments = comments.filter(change=change_get(team=ctx.team, change_id=change_id))
    else:
        found = artifact_selectors.artifact_get(team=ctx.team, name=artifact)
        comments = comments.filter(artifact=found)
    if state:
        comments = comments.filter(state=state)
    return [_comment_payload(c) for c in comments.order_by("created_at", "id")]
