from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from apps.artifacts.models import Artifact, ArtifactVersion, MemoryNote
from apps.core.errors import NotFound
from apps.teams.models import Team


def artifact_list(*, team: Team, thread_id: int | None = None) -> QuerySet[Artifact]:
    artifacts = Artifact.objects.filter(team=team).select_related("thread")
    if thread_id is not None:
        artifacts = artifacts.filter(thread_id=thread_id)
    return artifacts.order_by("name")


def artifact_get(
    *, team: Team, artifact_id: int | None = None, name: str | None = None
) -> Artifact:
    artifacts = Artifact.objects.filter(team=team)
    artifact = (
        artifacts.filter(pk=artifact_id).first()
        if artifact_id is not None
        else artifacts.filter(name=(name or "").strip()).first()
    )
    if artifact is None:
        raise NotFound(f"No artifact {name!r}." if name else "Not found.")
    return artifact


def artifact_version_get(*, artifact: Artifact, version: int | None = None) -> ArtifactVersion:
    versions = artifact.versions.select_related("author_agent", "author_user", "author_run")
    found = (
        versions.filter(version=version).first()
        if version is not None
        else versions.order_by("-version").first()
    )
    if found is None:
        raise NotFound(f"{artifact.name} has no version {version}.")
    return found


def memory_list(*, team: Team, prefix: str = "") -> QuerySet[MemoryNote]:
    notes = MemoryNote.objects.filter(team=team)
    if prefix:
        notes = notes.filter(key__startswith=prefix)
    return notes.select_related("updated_by_agent", "updated_by_user").order_by("key")


def artifact_get_for_user(*, user: AbstractBaseUser | AnonymousUser, artifact_id: int) -> Artifact:
    """An artifact in one of the user's teams (404 otherwise)."""
    if not user.is_authenticated:
        raise NotFound()
    artifact = (
        Artifact.objects.select_related("team", "thread")
        .filter(pk=artifact_id, team__memberships__user=user)
        .first()
    )
    if artifact is None:
        raise NotFound()
    return artifact


def artifact_version_list(*, artifact: Artifact) -> QuerySet[ArtifactVersion]:
    return artifact.versions.select_related("author_agent", "author_user", "author_run").order_by(
        "-version"
    )
