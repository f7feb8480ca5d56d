"""Reads of repositories and changes, scoped to the acting team (another team's id is a 404)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.repos.models import Change, ChangeVersion, Repository
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team


def clone_path(repo: Repository) -> str:
    """The path of the repository's git-over-HTTP URL (/git/<team slug>/<name>.git)."""
    return f"/git/{repo.team.slug}/{repo.name}.git"


def clone_url(repo: Repository, *, base_url: str | None = None) -> str:
    """The URL git clones: under `base_url` (the address the caller used), else under the
    address sandboxes reach ozweb by (OZWEB_AGENT_API_URL)."""
    base = (base_url or settings.OZWEB_AGENT_API_URL).rstrip("/")
    return base + clone_path(repo)


def repo_list(*, team: Team) -> QuerySet[Repository]:
    return Repository.objects.filter(team=team).select_related("team").order_by("name")


def repo_get(*, team: Team, repo_id: int) -> Repository:
    repo = Repository.objects.select_related("team").filter(team=team, pk=repo_id).first()
    if repo is None:
        raise NotFound()
    return repo


def repo_by_path(*, team_slug: str, name: str) -> Repository | None:
    """The repository of a git URL, or None (the caller checks the credential's team)."""
    return Repository.objects.select_related("team").filter(team__slug=team_slug, name=name).first()


def access_repo(
    *, user: User | AnonymousUser, repo_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Repository]:
    repo = Repository.objects.filter(pk=repo_id).first()
    if repo is None:
        raise NotFound()
    membership = access_team(user=user, team_id=repo.team_id, role=role)
    repo.team = membership.team
    return membership, repo


def _changes() -> QuerySet[Change]:
    return Change.objects.select_related("repo", "repo__team", "agent", "thread").prefetch_related(
        "versions"
    )


def change_list(
    *,
    team: Team,
    repo_id: int | None = None,
    run_id: int | None = None,
    agent_id: int | None = None,
    status: str | None = None,
) -> QuerySet[Change]:
    changes = _changes().filter(team=team)
    if repo_id is not None:
        changes = changes.filter(repo_id=repo_id)
    if agent_id is not None:
        changes = changes.filter(agent_id=agent_id)
    if status:
        changes = changes.filter(status=status)
    if run_id is not None:
        changes = changes.filter(versions__run_id=run_id).distinct()
    return changes.order_by("-created_at", "-id")


def change_get(*, team: Team, change_id: int) -> Change:
    change = _changes().filter(team=team, pk=change_id).first()
    if change is None:
        raise NotFound()
    return change


def access_change(
    *, user: User | AnonymousUser, change_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Change]:
    change = _changes().filter(pk=change_id).first()
    if change is None:
        raise NotFound()
    membership = access_team(user=user, team_id=change.team_id, role=role)
    return membership, change


def change_versions(change: Change) -> list[ChangeVersion]:
    """Its versions, oldest first (from the prefetch when there is one)."""
    return sorted(change.versions.all(), key=lambda v: v.number)


def change_version_get(*, change: Change, number: int | None = None) -> ChangeVersion:
    """Version `number` (None: the newest)."""
    versions = change_versions(change)
    if number is None:
        if versions:
            return versions[-1]
    else:
        for version in versions:
            if version.number == number:
                return version
    raise NotFound(f"Change {change.pk} has no version {number}.")


def change_run_ids(change: Change) -> list[int]:
    """The runs that produced its versions, in order, each once."""
    return list(dict.fromkeys(v.run_id for v in change_versions(change) if v.run_id is not None))


def change_open_on_branch(*, repo: Repository, branch: str) -> Change | None:
    return Change.objects.filter(repo=repo, branch=branch, status="open").first()


def change_open_for_thread(*, agent_id: int, repo_id: int, thread_id: int) -> Change | None:
    """The agent's newest open change in this thread (a follow-up there continues it)."""
    return (
        Change.objects.filter(
            agent_id=agent_id, repo_id=repo_id, thread_id=thread_id, status="open"
        )
        .order_by("-updated_at", "-id")
        .first()
    )
