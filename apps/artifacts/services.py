"""Artifacts (named, versioned, content-addressed) and team memory."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mimetypes
import re
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from apps.artifacts.media_types import media_type_clean
from apps.artifacts.models import (
    Artifact,
    ArtifactKind,
    ArtifactVersion,
    MemoryNote,
    memory_key_clean,
    version_path,
)
from apps.artifacts.selectors import artifact_version_open
from apps.core.errors import ServiceError
from apps.core.patterns import stripped
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import require_role
from apps.threads.models import MessageKind, Thread
from apps.threads.services import NewMessage, messages_append

NAME_RE = re.compile(r"^[\w][\w .@+/-]{0,199}$")
NAME_HELP = "An artifact name is 1–200 characters: letters, digits, space and . _ - / @ +."
# A name as the doors take it (what _check_name accepts), for their serializers and schema.
NAME_INPUT = r"^(?![\s\S]*\.\.)" + stripped(NAME_RE.pattern).removeprefix("^")
MAX_MEMORY_BYTES = 64 * 1024


class StorageFailed(ServiceError):
    """The artifact store did not take the bytes (full, read-only, gone): nothing was kept,
    and the same put can be tried again once the store is fixed."""

    status_code = 503

    def __init__(self, exc: OSError) -> None:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            self.status_code = 507  # Insufficient Storage
            message, code = "The artifact store is full", "storage_full"
        else:
            message, code = "The artifact store cannot be written", "storage_unavailable"
        super().__init__(
            f"{message} ({exc.strerror or exc}); nothing was stored. Try again later.", code=code
        )


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name) or ".." in name:
        raise ServiceError(NAME_HELP, field="name")
    return name


def artifact_check_size(size: int) -> None:
    """Refuse content over the limit; callers holding an upload check before reading it."""
    limit = settings.OZWEB_ARTIFACT_MAX_BYTES
    if size > limit:
        raise ServiceError(
            f"The artifact is {size:,} bytes; the limit is {limit:,} bytes.",
            field="content",
            code="too_large",
        )


def artifact_put(
    *,
    team: Team,
    name: str,
    content: bytes | str,
    kind: str = ArtifactKind.FILE,
    media_type: str = "",
    url: str = "",
    thread: Thread | None = None,
    author_run: Any = None,
    author_agent: Any = None,
    author_user: Any = None,
) -> ArtifactVersion:
    """Store a new version of the named artifact (creating it on first put) and post a card."""
    name = _check_name(name)
    if kind not in ArtifactKind.values:
        raise ServiceError(
            f"Unknown artifact kind; choose one of {', '.join(ArtifactKind.values)}.", field="kind"
        )
    data = content.encode() if isinstance(content, str) else bytes(content)
    artifact_check_size(len(data))
    if kind == ArtifactKind.LINK and not re.match(r"^https?://", url or ""):
        raise ServiceError("A link artifact needs an http(s) url.", field="url")
    media_type = media_type_clean(media_type) if media_type else _guess_media_type(name, kind)
    sha256 = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        artifact = _artifact_for_update(team=team, name=name, kind=kind, thread=thread)
        artifact.latest_version += 1
        artifact.kind = kind
        if thread is not None:
            artifact.thread = thread
        artifact.save(update_fields=["latest_version", "kind", "thread", "updated_at"])
        version = ArtifactVersion(
            artifact=artifact,
            version=artifact.latest_version,
            sha256=sha256,
            size=len(data),
            media_type=media_type,
            url=url,
            author_run=author_run,
            author_agent=author_agent,
            author_user=author_user,
        )
        _store_bytes(version, version_path(version, sha256), data)
        version.save()
        if artifact.thread is not None:
            _post_card(artifact.thread, artifact, version)
    return version


def _store_bytes(version: ArtifactVersion, path: str, data: bytes) -> None:
    """Put the bytes at their content address, or share the same bytes already there. A write
    the store refuses leaves no partial file behind: a later put of the same bytes would
    otherwise share a truncated copy. (Raising rolls back the version's rows.)"""
    storage = version.content.storage
    if storage.exists(path):
        if storage.size(path) == len(data):
            version.content.name = path  # the same bytes are already stored: share them
            return
        storage.delete(path)  # a write cut short earlier (a crash): not those bytes
    try:
        version.content.save(version.sha256, ContentFile(data), save=False)
    except OSError as exc:
        with contextlib.suppress(OSError):
            # A complete copy there is a concurrent put's (the same bytes): it stays.
            if storage.exists(path) and storage.size(path) != len(data):
                storage.delete(path)
        raise StorageFailed(exc) from exc


def _artifact_for_update(*, team: Team, name: str, kind: str, thread: Thread | None) -> Artifact:
    artifact = Artifact.objects.select_for_update().filter(team=team, name=name).first()
    if artifact is not None:
        return artifact
    try:
        with transaction.atomic():
            return Artifact.objects.create(team=team, name=name, kind=kind, thread=thread)
    except IntegrityError:  # created by a concurrent put: take that one
        return Artifact.objects.select_for_update().get(team=team, name=name)


def _guess_media_type(name: str, kind: str) -> str:
    if kind in (ArtifactKind.PLAN, ArtifactKind.REPORT):
        return "text/markdown"
    if kind == ArtifactKind.PATCH:
        return "text/x-diff"
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "text/plain"


def _post_card(thread: Thread, artifact: Artifact, version: ArtifactVersion) -> None:
    author = version.author_agent
    verb = "added" if version.version == 1 else f"updated to v{version.version}"
    messages_append(
        thread=thread,
        items=[
            NewMessage(
                body=f"{artifact.get_kind_display()} **{artifact.name}** {verb}",
                kind=MessageKind.ARTIFACT,
                author_agent=author,
                author_user=version.author_user,
                run_id=version.author_run_id,
                data={
                    "artifact": artifact.pk,
                    "name": artifact.name,
                    "kind": artifact.kind,
                    "version": version.version,
                    "size": version.size,
                    "media_type": version.media_type,
                    "sha256": version.sha256,
                    "url": version.url,
                },
            )
        ],
    )


def artifact_version_text(version: ArtifactVersion, *, limit: int | None = None) -> str:
    with artifact_version_open(version) as handle:
        data = handle.read(limit) if limit else handle.read()
    return data.decode("utf-8", errors="replace")


def artifact_put_as_human(
    *, actor: Membership, name: str, content: bytes | str, **fields: Any
) -> ArtifactVersion:
    require_role(actor, Role.MEMBER, "Viewers cannot add artifacts.")
    return artifact_put(
        team=actor.team, name=name, content=content, author_user=actor.user, **fields
    )


# -- team memory ------------------------------------------------------------------------------


def memory_set(
    *, team: Team, key: str, value: str, agent: Any = None, user: Any = None
) -> MemoryNote:
    key = memory_key_clean(key)
    if not isinstance(value, str):
        raise ServiceError("A memory value is text.", field="value")
    if len(value.encode()) > MAX_MEMORY_BYTES:
        raise ServiceError("A memory value is at most 64 KiB.", field="value", code="too_large")
    note, _ = MemoryNote.objects.update_or_create(
        team=team,
        key=key,
        defaults={"value": value, "updated_by_agent": agent, "updated_by_user": user},
    )
    return note


def memory_delete(*, actor: Membership, key: str) -> None:
    require_role(actor, Role.MEMBER, "Viewers cannot edit team memory.")
    MemoryNote.objects.filter(team=actor.team, key=key).delete()


def memory_set_as_human(*, actor: Membership, key: str, value: str) -> MemoryNote:
    require_role(actor, Role.MEMBER, "Viewers cannot edit team memory.")
    return memory_set(team=actor.team, key=key, value=value, user=actor.user)
