"""Line comments and reviews on changes and on text artifact versions.

A comment stays `pending` until a review sends it: `request_changes` (or any verdict with
`send=True`) posts ONE message of kind "review" in the thread, addressed to the agent that wrote
the work, holding the review's body and every pending comment (path, line, the code there with
a little context, the comment). The message gets a Delivery like any other, so a running agent
gets it mid-run and an idle one is woken (with data.change_id a run continues on the change's
branch). The comments it carried turn `sent`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from apps.agents.models import Agent
from apps.agents.services import require_not_archived
from apps.artifacts.models import Artifact, ArtifactVersion
from apps.artifacts.previews import is_text_media_type
from apps.artifacts.selectors import artifact_version_get, artifact_version_open
from apps.core.errors import Conflict, ServiceError
from apps.core.realtime import broadcast_on_commit
from apps.repos import git, review_events
from apps.repos.diffs import FileDiff, file_in
from apps.repos.models import (
    Change,
    ChangeStatus,
    CommentSide,
    CommentState,
    Review,
    ReviewComment,
    Verdict,
)
from apps.repos.review_selectors import review_version_get, version_diff
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.models import Message, MessageKind, Thread
from apps.threads.services import (
    NewMessage,
    check_body,
    messages_append,
    thread_direct_for_agent,
    thread_mark_read,
)

CONTEXT_LINES = 3
MAX_CONTEXT_LINES = 40  # a long range is sent as its first lines
MAX_COMMENT_BYTES = 16 * 1024
ARTIFACT_MAX_BYTES = 2 * 1024 * 1024  # what is read to number an artifact's lines


@dataclass(frozen=True)
class CommentInput:
    line: int
    body: str
    end_line: int | None = None
    reply_to: int | None = None


def _check_comment_body(body: str) -> str:
    body = check_body(body)
    if not body.strip():
        raise ServiceError("Write the comment first.", field="body")
    if len(body.encode()) > MAX_COMMENT_BYTES:
        raise ServiceError(
            f"A comment is at most {MAX_COMMENT_BYTES:,} bytes.", field="body", code="too_large"
        )
    return body


def _check_range(line: int, end_line: int | None) -> int:
    if line < 1:
        raise ServiceError("Lines are numbered from 1.", field="line")
    if end_line is None:
        return line
    if end_line < line:
        raise ServiceError("end_line comes before line.", field="end_line")
    return end_line


def _window(line: int, end_line: int) -> tuple[int, int, int]:
    """(first, end, last): the commented lines line..end (a long range: its first lines) and
    the numbers shown around them."""
    end = min(end_line, line + MAX_CONTEXT_LINES - 1)
    return max(1, line - CONTEXT_LINES), end, end + CONTEXT_LINES


def _numbered(texts: dict[int, str], *, line: int, end: int) -> str:
    """The lines, numbered, the commented ones marked with ">"."""
    width = len(str(max(texts)))
    return "\n".join(
        f"{'>' if line <= n <= end else ' '} {n:>{width}} | {text}"
        for n, text in sorted(texts.items())
    )


def code_context(text: str, *, line: int, end_line: int) -> str:
    """The lines around line..end_line of a file's text, numbered, the commented ones marked."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first, end, last = _window(line, end_line)
    texts = {n: lines[n - 1] for n in range(first, min(last, len(lines)) + 1)}
    return _numbered(texts, line=line, end=end) if texts else ""


def _context_from_diff(diff: FileDiff, *, side: str, line: int, end_line: int) -> str | None:
    """code_context from the diff's own lines when they cover the whole window (they are the
    file's lines at that commit): no `git show` for the usual comment. None otherwise."""
    first, end, last = _window(line, end_line)
    texts: dict[int, str] = {}
    for hunk in diff.hunks:
        for item in hunk.lines:
            number = item.new if side == "new" else item.old
            if number is not None and first <= number <= last:
                texts[number] = item.text
    if len(texts) != last - first + 1:
        return None
    return _numbered(texts, line=line, end=end)


def _reply_parent(reply_to: int | None, **target: object) -> ReviewComment | None:
    if reply_to is None:
        return None
    parent = ReviewComment.objects.filter(pk=reply_to, **target).first()
    if parent is None:
        raise ServiceError(f"No comment {reply_to} on this to reply to.", field="reply_to")
    return parent.reply_to or parent  # threads stay one level deep


def _require_open(change: Change) -> None:
    if change.status != ChangeStatus.OPEN:
        raise Conflict(
            f"Change {change.pk} is {change.status}: it takes no more comments or reviews.",
            code="change_not_open",
        )


def _broadcast_comment(comment: ReviewComment) -> None:
    group = review_events.review_group(comment)
    broadcast_on_commit(group, lambda: review_events.comment_event(comment))


def change_comment_create(
    *,
    actor: Membership,
    change: Change,
    comment: CommentInput,
    path: str | None,
    version: int | None = None,
    side: str = CommentSide.NEW,
) -> ReviewComment:
    """A line comment on a version of a change (the newest by default). The line must be one
    the version's diff shows on that side; a reply takes its parent's place."""
    require_role(actor, Role.MEMBER, "Viewers cannot comment.", team_id=change.team_id)
    _require_open(change)
    body = _check_comment_body(comment.body)
    parent = _reply_parent(comment.reply_to, change=change)
    if parent is not None:
        found = review_version_get(change=change, number=parent.version)
        path, side, line, end_line = parent.path, parent.side, parent.line, parent.end_line
        context = parent.context
    else:
        if not path:
            raise ServiceError("Say which file: path.", field="path")
        if side not in CommentSide.values:
            raise ServiceError('side is "new" or "old".', field="side")
        line, end_line = comment.line, comment.end_line
        last = _check_range(line, end_line)
        found = review_version_get(change=change, number=version)
        diff = file_in(version_diff(change=change, version=found), path)
        if diff is None:
            raise ServiceError(
                f"{path} is not in the diff of version {found.number}.", field="path"
            )
        shown = diff.lines_on(side)
        missing = [n for n in (line, last) if n not in shown]
        if missing:
            raise ServiceError(
                f"Line {missing[0]} of {path} ({side} side) is not in the diff of version "
                f"{found.number}: comment on a line the diff shows.",
                field="line",
                code="line_not_in_diff",
            )
        path = diff.path  # the name the page files it under (a rename's new name)
        sha, at_path = (found.head, diff.new_path) if side == "new" else (
            found.base_sha, diff.old_path)  # fmt: skip
        from_diff = _context_from_diff(diff, side=side, line=line, end_line=last)
        if from_diff is not None:
            context = from_diff
        else:  # the lines around it are not all in the diff: read the file
            try:
                context = code_context(git.show_file(change.repo, sha, at_path), line=line,
                                       end_line=last)  # fmt: skip
            except FileNotFoundError:
                context = ""
    created = ReviewComment.objects.create(
        team_id=change.team_id, change=change, version=found.number, path=path or "",
        line=line, end_line=end_line, side=side, body=body, reply_to=parent, context=context,
        author=actor.user,
    )  # fmt: skip
    _broadcast_comment(created)
    return created


def line_count(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def artifact_text(version: ArtifactVersion) -> str:
    if not is_text_media_type(version.media_type):
        raise ServiceError(
            f"{version.artifact.name} v{version.version} is not text: it has no lines to "
            "comment on.",
            field="version",
        )
    with artifact_version_open(version) as handle:
        data = handle.read(ARTIFACT_MAX_BYTES)
    return data.decode("utf-8", errors="replace")


def artifact_comment_create(
    *, actor: Membership, artifact: Artifact, comment: CommentInput, version: int | None
) -> ReviewComment:
    require_role(actor, Role.MEMBER, "Viewers cannot comment.", team_id=artifact.team_id)
    body = _check_comment_body(comment.body)
    parent = _reply_parent(comment.reply_to, artifact=artifact)
    if parent is not None:
        number, line, end_line, context = (
            parent.version, parent.line, parent.end_line, parent.context)  # fmt: skip
    else:
        line, end_line = comment.line, comment.end_line
        last = _check_range(line, end_line)
        found = _artifact_version(artifact, version)
        text = artifact_text(found)
        count = line_count(text)
        if last > count:
            raise ServiceError(
                f"{artifact.name} v{found.version} has {count} lines; there is no line {last}.",
                field="end_line" if last != line else "line",
                code="line_not_in_version",
            )
        number = found.version
        context = code_context(text, line=line, end_line=last)
    created = ReviewComment.objects.create(
        team_id=artifact.team_id, artifact=artifact, version=number, path=artifact.name,
        line=line, end_line=end_line, body=body, reply_to=parent, context=context,
        author=actor.user,
    )  # fmt: skip
    _broadcast_comment(created)
    return created


def _artifact_version(artifact: Artifact, version: int | None) -> ArtifactVersion:
    try:
        return artifact_version_get(artifact=artifact, version=version)
    except ServiceError as exc:
        raise ServiceError(exc.message, field="version") from None


def comment_resolve(*, actor: Membership, comment: ReviewComment) -> ReviewComment:
    """Mark a comment (and its thread's replies) resolved; resolving twice is no change."""
    require_role(actor, Role.MEMBER, "Viewers cannot resolve comments.", team_id=comment.team_id)
    root = comment.reply_to or comment
    ReviewComment.objects.filter(pk=root.pk).update(state=CommentState.RESOLVED)
    ReviewComment.objects.filter(reply_to=root).update(state=CommentState.RESOLVED)
    comment.refresh_from_db()
    root.refresh_from_db()
    _broadcast_comment(root)
    return comment


# -- reviews -----------------------------------------------------------------------------


def _fence(code: str) -> str:
    """A Markdown fence longer than any backtick run in the code."""
    longest = run = 0
    for char in code:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _comment_section(comment: ReviewComment, *, current_version: int) -> str:
    where = f"line {comment.line}" + (
        f"–{comment.end_line}" if comment.end_line and comment.end_line != comment.line else ""
    )
    side = " (old side: the line as it was before the change)" if comment.side == "old" else ""
    on_version = f" (on v{comment.version})" if comment.version != current_version else ""
    head = f"### `{comment.path}` {where}{side}{on_version}"
    author = comment.author.get_username() if comment.author else "someone"
    reply = " (reply)" if comment.reply_to_id else ""
    parts = [head]
    if comment.context and not comment.reply_to_id:
        fence = _fence(comment.context)
        parts.append(f"{fence}\n{comment.context}\n{fence}")
    parts.append(f"@{author}{reply}: {comment.body}")
    return "\n\n".join(parts)


VERDICT_HEADLINES = {
    Verdict.REQUEST_CHANGES: "changes requested",
    Verdict.COMMENT: "comments",
    Verdict.APPROVE: "approved",
}


def review_message_body(
    *, subject: str, verdict: str, body: str, comments: list[ReviewComment], version: int,
    reviewer: str, instructions: str,
) -> str:  # fmt: skip
    parts = [f"**Review of {subject} by @{reviewer}: {VERDICT_HEADLINES[Verdict(verdict)]}.**"]
    if body.strip():
        parts.append(body.strip())
    if comments:
        parts.append(f"{len(comments)} line comment{'s' if len(comments) != 1 else ''}:")
        parts += [_comment_section(c, current_version=version) for c in comments]
    parts.append(instructions)
    return "\n\n".join(parts)


def _send(
    *, actor: Membership, thread: Thread, agent: Agent, body: str, data: dict,
) -> Message:  # fmt: skip
    body = check_body(body)
    [message] = messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=body,
                kind=MessageKind.REVIEW,
                author_user=actor.user,
                data=data,
                recipients=[agent],
            )
        ],  # fmt: skip
    )
    thread_mark_read(thread=thread, user=actor.user, seq=message.seq)
    return message


def _should_send(verdict: str, send: bool | None) -> bool:
    if verdict == Verdict.REQUEST_CHANGES:
        return True  # the point of asking for changes is that the agent hears it
    return bool(send)


def _check_verdict(verdict: str) -> None:
    if verdict not in Verdict.values:
        raise ServiceError('verdict is "comment", "request_changes" or "approve".', field="verdict")


def change_review_create(
    *, actor: Membership, change: Change, verdict: str, body: str = "", send: bool | None = None
) -> Review:
    require_role(actor, Role.MEMBER, "Viewers cannot review.", team_id=change.team_id)
    _check_verdict(verdict)
    _require_open(change)
    body = check_body(body)
    sending = _should_send(verdict, send)
    with transaction.atomic():
        # The change row's lock orders reviews of one change: a pending comment goes once.
        change = Change.objects.select_for_update().select_related("agent", "repo").get(
            pk=change.pk)  # fmt: skip
        _require_open(change)
        review = Review.objects.create(
            team_id=change.team_id, change=change, version=change.version, verdict=verdict,
            body=body, author=actor.user,
        )  # fmt: skip
        if sending:
            require_not_archived(change.agent)
            thread = change.thread or thread_direct_for_agent(agent=change.agent)
            pending = list(
                change.comments.filter(state=CommentState.PENDING)
                .select_related("author").order_by("created_at", "id")
            )  # fmt: skip
            text = review_message_body(
                subject=f"change {change.pk} “{change.title}” (v{change.version}, branch "
                f"`{change.branch}`)",
                verdict=verdict, body=body, comments=pending, version=change.version,
                reviewer=actor.user.get_username(),
                instructions=(
                    "Address each comment on the change's branch and commit: your next commit "
                    "becomes the next version of the change."
                    if verdict != Verdict.APPROVE else "No changes needed."
                ),
            )  # fmt: skip
            message = _send(
                actor=actor, thread=thread, agent=change.agent, body=text,
                data={"change_id": change.pk, "version": change.version,
                      "review_id": review.pk, "verdict": verdict},
            )  # fmt: skip
            review.message = message
            review.save(update_fields=["message"])
            _mark_sent(pending, message)
    broadcast_on_commit(
        review_events.change_group(change.pk), lambda: review_events.review_event(review)
    )
    return review


def _mark_sent(comments: list[ReviewComment], message: Message) -> None:
    ids = [c.pk for c in comments]
    ReviewComment.objects.filter(pk__in=ids, state=CommentState.PENDING).update(
        state=CommentState.SENT, sent_in=message
    )
    for comment in comments:
        comment.state, comment.sent_in = CommentState.SENT, message
        _broadcast_comment(comment)


def artifact_review_create(
    *,
    actor: Membership,
    artifact: Artifact,
    verdict: str,
    body: str = "",
    send: bool | None = None,
    version: int | None = None,
) -> Review:
    """A review of an artifact version (the newest by default), sent to the agent that wrote
    that version, in the artifact's thread (or that agent's direct thread)."""
    require_role(actor, Role.MEMBER, "Viewers cannot review.", team_id=artifact.team_id)
    _check_verdict(verdict)
    body = check_body(body)
    found = _artifact_version(artifact, version)
    sending = _should_send(verdict, send)
    agent = found.author_agent
    if sending and agent is None:
        raise Conflict(
            f"{artifact.name} v{found.version} was not written by an agent: there is nobody "
            "to send the review to.",
            code="no_agent",
        )
    with transaction.atomic():
        Artifact.objects.select_for_update().filter(pk=artifact.pk).first()
        review = Review.objects.create(
            team_id=artifact.team_id, artifact=artifact, version=found.version,
            verdict=verdict, body=body, author=actor.user,
        )  # fmt: skip
        if sending and agent is not None:
            require_not_archived(agent)
            thread = artifact.thread or thread_direct_for_agent(agent=agent)
            pending = list(
                artifact.review_comments.filter(state=CommentState.PENDING)
                .select_related("author").order_by("created_at", "id")
            )  # fmt: skip
            text = review_message_body(
                subject=f"artifact “{artifact.name}” v{found.version}", verdict=verdict,
                body=body, comments=pending, version=found.version,
                reviewer=actor.user.get_username(),
                instructions=(
                    f"Address each comment and put the artifact again with put_artifact "
                    f"(name “{artifact.name}”): that is its next version."
                    if verdict != Verdict.APPROVE else "No changes needed."
                ),
            )  # fmt: skip
            message = _send(
                actor=actor, thread=thread, agent=agent, body=text,
                data={"artifact_id": artifact.pk, "version": found.version,
                      "review_id": review.pk, "verdict": verdict},
            )  # fmt: skip
            review.message = message
            review.save(update_fields=["message"])
            _mark_sent(pending, message)
    broadcast_on_commit(
        review_events.artifact_group(artifact.pk), lambda: review_events.review_event(review)
    )
    return review
