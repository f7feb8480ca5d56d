from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from apps.core.models import TimeStampedModel
from apps.teams.models import Team

REPO_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class Repository(TimeStampedModel):
    """A team's git repository, stored as a bare repository under the data dir."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(
        max_length=100,
        validators=[RegexValidator(REPO_NAME_PATTERN, "Letters, digits, '.', '-' and '_'.")],
    )
    default_branch = models.CharField(max_length=200, default="main")
    # Where it was imported from (empty for a repository created empty).
    source = models.CharField(max_length=2000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="repository_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.team.slug}/{self.name}"


class ChangeStatus(models.TextChoices):
    OPEN = "open", "Open"
    MERGED = "merged", "Merged"
    CLOSED = "closed", "Closed"


class Change(TimeStampedModel):
    """A run's branch that differs from its base: reviewable, versioned (one version per push),
    merged or closed by a human."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="changes")
    repo = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="changes")
    title = models.CharField(max_length=300)
    branch = models.CharField(max_length=250)
    base = models.CharField(max_length=250)
    status = models.CharField(
        max_length=10, choices=ChangeStatus.choices, default=ChangeStatus.OPEN
    )
    # Number of the newest version (versions are 1, 2, ...).
    version = models.PositiveIntegerField(default=1)
    head = models.CharField(max_length=64)  # the newest version's commit sha
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="changes")
    thread = models.ForeignKey(
        "threads.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merge_commit = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["repo", "branch"],
                condition=models.Q(status="open"),
                name="change_one_open_per_branch",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ChangeStatus.values), name="change_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"change {self.pk} {self.branch}"


class ChangeVersion(models.Model):
    change = models.ForeignKey(Change, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    head = models.CharField(max_length=64)
    # The base commit this version was diffed against (the merge base when it was pushed).
    base_sha = models.CharField(max_length=64)
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="change_versions"
    )
    # [{"path", "status", "additions", "deletions"}], computed once at push time.
    files = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["change", "number"]
        constraints = [
            models.UniqueConstraint(fields=["change", "number"], name="change_version_unique"),
        ]

    def __str__(self) -> str:
        return f"change {self.change_id} v{self.number}"


class CommentState(models.TextChoices):
    PENDING = "pending", "Pending"  # not sent to the agent yet
    SENT = "sent", "Sent"
    RESOLVED = "resolved", "Resolved"


class CommentSide(models.TextChoices):
    NEW = "new", "New"
    OLD = "old", "Old"


class ReviewComment(TimeStampedModel):
    """A line comment on a change version or on a text artifact version (exactly one of the two)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="review_comments")
    change = models.ForeignKey(
        Change, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    artifact = models.ForeignKey(
        "artifacts.Artifact",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="review_comments",
    )
    version = models.PositiveIntegerField()
    path = models.CharField(max_length=1000, blank=True)
    line = models.PositiveIntegerField()
    end_line = models.PositiveIntegerField(null=True, blank=True)
    side = models.CharField(max_length=3, choices=CommentSide.choices, default=CommentSide.NEW)
    body = models.TextField()
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    state = models.CharField(
        max_length=10, choices=CommentState.choices, default=CommentState.PENDING
    )
    # The code at the line (with a little context) when the comment was made, as sent to the agent.
    context = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The review message that carried it to the agent.
    sent_in = models.ForeignKey(
        "threads.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(change__isnull=False, artifact__isnull=True)
                    | models.Q(change__isnull=True, artifact__isnull=False)
                ),
                name="review_comment_one_target",
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=CommentState.values), name="review_comment_state_valid"
            ),
        ]


class Verdict(models.TextChoices):
    COMMENT = "comment", "Comment"
    REQUEST_CHANGES = "request_changes", "Request changes"
    APPROVE = "approve", "Approve"


class Review(TimeStampedModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="reviews")
    change = models.ForeignKey(
        Change, null=True, blank=True, on_delete=models.CASCADE, related_name="reviews"
    )
    artifact = models.ForeignKey(
        "artifacts.Artifact",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="reviews",
    )
    version = models.PositiveIntegerField()
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    body = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The message that took it to the agent (request_changes, or comment with send=true).
    message = models.ForeignKey(
        "threads.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(change__isnull=False, artifact__isnull=True)
                    | models.Q(change__isnull=True, artifact__isnull=False)
                ),
                name="review_one_target",
            ),
            models.CheckConstraint(
                condition=models.Q(verdict__in=Verdict.values), name="review_verdict_valid"
            ),
        ]
