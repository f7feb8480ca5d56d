"""Writes of repositories and changes: create/import a repository, record a pushed version,
merge, close, and hand a merge conflict to the agent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.agents.models import Agent
from apps.core.errors import Conflict, ServiceError
from apps.core.registry import publish_event
from apps.repos import git
from apps.repos.models import REPO_NAME_PATTERN, Change, ChangeStatus, ChangeVersion, Repository
from apps.repos.selectors import change_open_on_branch
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.models import Message, MessageKind, Thread
from apps.threads.services import NewMessage, messages_append

NAME_HELP = "Letters, digits, '.', '-' and '_', starting with a letter or digit (at most 100)."
# https://host/path, ssh://[user@]host/path, or scp-like user@host:path.
_REMOTE_SOURCE = re.compile(r"^(https://[^\s]+|ssh://[^\s]+|[\w.-]+@[\w.-]+:[^\s]+)$")
TITLE_MAX = 300


class MergeConflict(Conflict):
    def __init__(self, conflicts: list[str]) -> None:
        super().__init__(
            f"The branch does not merge cleanly: {len(conflicts)} file(s) conflict.",
            code="merge_conflict",
        )
        self.conflicts = conflicts


def check_repo_name(name: str) -> str:
    if not re.match(REPO_NAME_PATTERN, name) or name.endswith(".git") or ".." in name:
        raise ServiceError(
            f"Invalid repository name. {NAME_HELP} Not ending in .git.", field="name"
        )
    return name


def check_source(source: str) -> str:
    source = source.strip()
    if source.startswith("-"):
        raise ServiceError("Invalid source.", field="source")
    if _REMOTE_SOURCE.match(source):
        return source
    local = source.startswith(("file://", "/"))
    if local and settings.OZWEB_ALLOW_LOCAL_REPO_SOURCES:
        return source
    if local:
        raise ServiceError(
            "Importing from a local path is off on this server (OZWEB_ALLOW_LOCAL_REPO_SOURCES).",
            field="source",
        )
    raise ServiceError("The source must be an https:// or ssh git URL.", field="source")


def repo_create(
    *, actor: Membership, name: str, source: str = "", default_branch: str = "main"
) -> Repository:
    """An empty repository, or an import of `source` (a clear 400 and nothing left behind
    when git can not read it)."""
    require_role(actor, Role.MEMBER, "Viewers can not create repositories.")
    name = check_repo_name(name.strip())
    source = check_source(source) if source else ""
    if Repository.objects.filter(team=actor.team, name=name).exists():
        raise ServiceError(f"The team already has a repository named {name}.", field="name")
    try:
        with transaction.atomic():
            repo = Repository.objects.create(
                team=actor.team,
                name=name,
                source=source,
                default_branch=default_branch,
                created_by=actor.user,
            )
            repo.team = actor.team
            if source:
                git.delete_bare(repo)
                try:
                    branch = git.import_from(
                        repo, source, allow_local=settings.OZWEB_ALLOW_LOCAL_REPO_SOURCES
                    )
                except git.GitError as exc:
                    raise ServiceError(f"Could not import {source}: {exc}", field="source") from exc
                if branch != repo.default_branch:
                    repo.default_branch = branch
                    repo.save(update_fields=["default_branch"])
            else:
                # A leftover of a rolled-back create (SQLite reuses ids) must not live on.
                git.delete_bare(repo)
                git.init_bare(repo)
    except IntegrityError:
        raise ServiceError(
            f"The team already has a repository named {name}.", field="name"
        ) from None
    return repo


# -- changes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushedVersion:
    change: Change
    version: ChangeVersion
    created: bool  # a new change (else a new version of the open one)


def agent_identity(agent: Agent) -> git.Identity:
    return git.Identity(
        name=agent.display_name or agent.handle,
        email=f"{agent.handle}@{agent.team.slug}.agents.ozweb",
    )


def user_identity(user: User) -> git.Identity:
    return git.Identity(
        name=user.get_full_name() or user.get_username(),
        email=user.email or f"{user.get_username()}@users.ozweb",
    )


def change_totals(files: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(f["additions"] for f in files), sum(f["deletions"] for f in files)


def change_record_push(
    *,
    repo: Repository,
    branch: str,
    head: str,
    agent: Agent,
    thread: Thread | None,
    run_id: int | None,
    title: str,
) -> PushedVersion | None:
    """The branch now points at `head`: a new version of the open change on it, or a new
    change when it differs from the default branch. None when there is nothing to review
    (the head is already in the base, or is the open change's newest version).

    Posts the change's card in the thread and publishes change.opened for a new change."""
    base_head = git.rev_parse(repo, f"refs/heads/{repo.default_branch}")
    base_sha = git.merge_base(repo, base_head, head) if base_head else None
    if base_head and base_sha == head:
        return None  # nothing the base does not have
    from_sha = base_sha or git.EMPTY_TREE
    files = git.file_stats(repo, from_sha, head)
    with transaction.atomic():
        change = change_open_on_branch(repo=repo, branch=branch)
        created = change is None
        if change is None:
            if not files:
                return None
            change = Change.objects.create(
                team_id=repo.team_id,
                repo=repo,
                title=(title.strip().splitlines() or [branch])[0][:TITLE_MAX] or branch,
                branch=branch,
                base=repo.default_branch,
                version=1,
                head=head,
                agent=agent,
                thread=thread,
            )
            number = 1
        else:
            change = Change.objects.select_for_update().get(pk=change.pk)
            if change.head == head:
                return None
            number = change.version + 1
            change.version, change.head = number, head
            change.save(update_fields=["version", "head", "updated_at"])
        version = ChangeVersion.objects.create(
            change=change,
            number=number,
            head=head,
            base_sha=base_sha or git.EMPTY_TREE,
            run_id=run_id,
            files=files,
        )
        change.repo = repo
        card_thread = thread or change.thread
        if card_thread is not None:
            change_card_post(
                change=change, version=version, thread=card_thread, run_id=run_id, author=agent
            )
        if created:
            publish_event("change.opened", team_id=repo.team_id, data=change_event_data(change))
    return PushedVersion(change=change, version=version, created=created)


def change_event_data(change: Change) -> dict[str, Any]:
    return {
        "change_id": change.pk,
        "repo_id": change.repo_id,
        "title": change.title,
        "branch": change.branch,
        "base": change.base,
        "version": change.version,
        "head": change.head,
        "agent_id": change.agent_id,
        "thread_id": change.thread_id,
        "status": change.status,
    }


def change_card_post(
    *, change: Change, version: ChangeVersion, thread: Thread, run_id: int | None, author: Agent
) -> Message:
    additions, deletions = change_totals(version.files)
    files = len(version.files)
    verb = "opened" if version.number == 1 else f"updated to v{version.number}"
    body = (
        f"Change #{change.pk} {verb}: {change.title} — {files} file{'s' if files != 1 else ''}, "
        f"+{additions} −{deletions} ({change.branch} → {change.base})"
    )
    [message] = messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=body,
                kind=MessageKind.CHANGE,
                author_agent=author,
                run_id=run_id,
                data={
                    "change_id": change.pk,
                    "version": version.number,
                    "files": files,
                    "additions": additions,
                    "deletions": deletions,
                    "branch": change.branch,
                    "base": change.base,
                    "head": version.head,
                    "title": change.title,
                },
            )
        ],
    )
    return message


def _require_open(change: Change) -> None:
    if change.status != ChangeStatus.OPEN:
        raise Conflict(f"The change is {change.status}.", code="change_not_open")


def change_merge(*, actor: Membership, change: Change) -> Change:
    """Merge the change's branch into its base (a merge commit). A conflict raises
    MergeConflict with the paths and changes nothing."""
    require_role(actor, Role.MEMBER, "Viewers can not merge changes.", team_id=change.team_id)
    with transaction.atomic():
        change = (
            Change.objects.select_for_update()
            .select_related("repo", "repo__team", "agent")
            .get(pk=change.pk)
        )
        _require_open(change)
        repo = change.repo
        try:
            result = git.merge(
                repo,
                branch=change.branch,
                into=change.base,
                author=user_identity(actor.user),
                message=f"Merge change #{change.pk}: {change.title}\n\nBranch {change.branch}, "
                f"version {change.version}.",
            )
        except git.GitError as exc:
            raise Conflict(f"Could not merge: {exc}", code="merge_failed") from exc
        if not result.merged:
            raise MergeConflict(result.conflicts)
        change.status = ChangeStatus.MERGED
        change.merged_at = timezone.now()
        change.merged_by = actor.user
        change.merge_commit = result.sha
        change.save(
            update_fields=["status", "merged_at", "merged_by", "merge_commit", "updated_at"]
        )
        publish_event(
            "change.merged",
            team_id=change.team_id,
            data={**change_event_data(change), "merge_commit": result.sha},
        )
    return change


def change_close(*, actor: Membership, change: Change) -> Change:
    require_role(actor, Role.MEMBER, "Viewers can not close changes.", team_id=change.team_id)
    updated = Change.objects.filter(pk=change.pk, status=ChangeStatus.OPEN).update(
        status=ChangeStatus.CLOSED, updated_at=timezone.now()
    )
    change.refresh_from_db()
    if not updated:
        _require_open(change)
    return change


def change_send_conflict(*, actor: Membership, change: Change) -> Message:
    """Hand a merge conflict to the change's agent: a message in the change's thread,
    addressed to it, that names the conflicting files; its run works on the change's branch
    (the message carries change_id) and its next push is the next version."""
    require_role(actor, Role.MEMBER, "Viewers can not message agents.", team_id=change.team_id)
    _require_open(change)
    try:
        conflicts = git.merge_conflicts(change.repo, branch=change.branch, into=change.base)
    except git.GitError as exc:
        raise Conflict(f"Could not check the merge: {exc}", code="merge_failed") from exc
    if not conflicts:
        raise Conflict(
            "The change merges cleanly: there is no conflict to send.", code="no_conflict"
        )
    thread = change.thread
    if thread is None:
        raise Conflict("The change has no thread to send the conflict to.", code="no_thread")
    agent = change.agent
    paths = "\n".join(f"- {p}" for p in conflicts)
    body = (
        f"@{agent.handle} change #{change.pk} ({change.branch}) no longer merges into "
        f"{change.base}. These files conflict:\n{paths}\n\n"
        f"Merge {change.base} into your branch (`git merge origin/{change.base}`: your "
        f"working copy's origin/{change.base} is current), resolve the conflicts and commit."
    )
    [message] = messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=body,
                author_user=actor.user,
                recipients=[agent],
                data={"change_id": change.pk, "conflicts": conflicts},
            )
        ],
    )
    return message
