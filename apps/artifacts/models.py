from __future__ import annotations

import re

from django.conf import settings
from django.db import models

from apps.core.errors import ServiceError
from apps.core.models import TimeStampedModel
from apps.core.patterns import stripped
from apps.teams.models import Team


class ArtifactKind(models.TextChoices):
    FILE = "file", "File"
    PATCH = "patch", "Patch"
    PLAN = "plan", "Plan"
    REPORT = "report", "Report"
    LINK = "link", "Link"


class Artifact(TimeStampedModel):
    """A named, versioned piece of work in a team: every put with the same name adds a version."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="artifacts")
    thread = models.ForeignKey(
        "threads.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ArtifactKind.choices, default=ArtifactKind.FILE)
    latest_version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="artifact_name_unique"),
            models.CheckConstraint(
                condition=models.Q(kind__in=ArtifactKind.values), name="artifact_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("artifact-detail", args=[self.pk])


def version_path(version: ArtifactVersion, filename: str) -> str:
    # Content-addressed inside the team: identical content is stored once per hash.
    return f"artifacts/team-{version.artifact.team_id}/{version.sha256[:2]}/{version.sha256}"


class ArtifactVersion(models.Model):
    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    content = models.FileField(upload_to=version_path, max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    media_type = models.CharField(max_length=120, default="text/plain")
    # For kind=link: where it points (content then holds a short description).
    url = models.URLField(max_length=2000, blank=True)
    author_run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    author_agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["artifact", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["artifact", "version"], name="artifact_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.artifact} v{self.version}"


MEMORY_KEY_RE = re.compile(r"^[\w][\w .:/@+-]{0,199}$")
MEMORY_KEY_HELP = "A memory key is 1–200 characters: letters, digits, space and . _ - : / @ +."
# A key as the doors take it (what memory_key_clean accepts), for their serializers and schema.
MEMORY_KEY_INPUT = stripped(MEMORY_KEY_RE.pattern)


def memory_key_clean(key: str) -> str:
    """The key stripped, or ServiceError when it is not one a note can have."""
    key = (key or "").strip()
    if not MEMORY_KEY_RE.match(key):
        raise ServiceError(MEMORY_KEY_HELP, field="key")
    return key


class MemoryNote(TimeStampedModel):
    """Team memory: a keyed note every agent of the team can read, and humans can edit."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memory")
    key = models.CharField(max_length=200)
    value = models.TextField()
    updated_by_agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["team", "key"], name="memory_key_unique")]

    def __str__(self) -> str:
        return self.key
