from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models

from apps.agents.models import Agent
from apps.core.models import TimeStampedModel
from apps.teams.models import Team


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)
FINISHED_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.TIMED_OUT,
)


class RunQuerySet(models.QuerySet["Run"]):
    def active(self) -> RunQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def finished(self) -> RunQuerySet:
        return self.filter(status__in=FINISHED_STATUSES)

    def orphaned(self, *, stale: datetime) -> RunQuerySet:
        """Started runs whose worker has sent no heartbeat since `stale`."""
        return self.filter(status__in=[RunStatus.STARTING, RunStatus.RUNNING]).filter(
            models.Q(heartbeat_at__lt=stale)
            | models.Q(heartbeat_at__isnull=True, updated_at__lt=stale)
        )

    def unclaimed(self, *, stale: datetime) -> RunQuerySet:
        """Queued since before `stale` and picked up by no worker (its dispatch was lost)."""
        return self.filter(status=RunStatus.QUEUED, created_at__lt=stale)


class Run(TimeStampedModel):
    """One execution of an agent's harness: a container (or local process) and its output."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="runs")
    # PROTECT: an agent is archived, never deleted, so its runs are never lost with it.
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="runs")
    thread = models.ForeignKey(
        "threads.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # The run that delegated this one, if any.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # The run whose harness session this one continues (a follow-up or a queued reply).
    resumes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt = models.TextField()
    # Agent-to-agent steps that led to this run (0 when a human started it).
    hop = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    harness = models.CharField(max_length=16)
    session_id = models.CharField(max_length=200, blank=True)
    sandbox = models.CharField(max_length=10, blank=True)  # "docker" or "local"
    container_id = models.CharField(max_length=100, blank=True)
    worker = models.CharField(max_length=200, blank=True)  # host:pid holding the run
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Its parent is blocked in a `delegate(wait=True)` call for its result.
    parent_waiting = models.BooleanField(default=False)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    stderr_tail = models.TextField(blank=True)
    result_text = models.TextField(blank=True)
    usage = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_event_seq = models.PositiveIntegerField(default=0)
    # Harness stdout lines whose events are stored (a takeover replays from there).
    stdout_lines = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="run_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="run_status"),
            models.Index(fields=["agent", "status"], name="run_agent_status"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.agent} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class RunEvent(models.Model):
    """A normalized harness event (HARNESSES.md §11), kept for the run page and debugging."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=24)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="run_event_seq_unique")]

    def __str__(self) -> str:
        return f"{self.run} event {self.seq} {self.kind}"


class RunToken(models.Model):
    """The credential a run's sandbox uses to call ozweb as its agent, in its team.

    Only a hash is stored. The token works while its run is active: it stops working the
    moment the run ends, however it ends.
    """

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="token")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The table it had when it lived in apps.agentapi (the move changed no data).
        db_table = "agentapi_runtoken"

    def __str__(self) -> str:
        return f"token of {self.run}"
