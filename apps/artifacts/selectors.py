from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.core.files import File
from django.db.models import QuerySet

from apps.artifacts.models import Artifact, ArtifactVersion, MemoryNote, memory_key_clean
from apps.core.errors import NotFound
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team


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


def memory_get(*, team: Team, key: str) -> MemoryNote:
    note = MemoryNote.objects.filter(team=team, key=memory_key_clean(key)).first()
    if note is None:
        raise NotFound(f"No memory note with the key “{key}”.")
    return note


def memory_list(*, team: Team, prefix: str = "") -> QuerySet[MemoryNote]:
    notes = MemoryNote.objects.filter(team=team)
    if prefix:
        notes = notes.filter(key__startswith=prefix)
    return notes.select_related("updated_by_agent", "updated_by_user").order_by("key")


def access_artifact(
    *, user: User | AnonymousUser, artifact_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Artifact]:
    """The artifact and the user's membership of its team, checked for `role`; another
    team's artifact is NotFound, like a missing one (see access_team)."""
    artifact = Artifact.objects.select_related("thread").filter(pk=artifact_id).first()
    if artifact is None:
        raise NotFound()
    membership = access_team(user=user, team_id=artifact.team_id, role=role)
    artifact.team = membership.team
    return membership, artifact


def artifact_version_list(*, artifact: Artifact) -> QuerySet[ArtifactVersion]:
    return artifact.versions.select_related("author_agent", "author_user", "author_run").order_by(
        "-version"
    )


def artifact_version_open(version: ArtifactVersion) -> File:
    """The version's stored bytes, open for reading. Bytes missing from the store (deleted or
    lost behind ozweb's back) are a clear NotFound, not a server error."""
    try:
        return version.content.open("rb")
    except FileNotFoundError:
        raise NotFound(
            f"The stored content of {version.artifact.name} v{version.version} is missing "
            "from the artifact store."
        ) from None
