"""Schedules (cron → a message that wakes an agent) and inbound triggers (a URL that turns a
POSTed payload into one). Both start agents the way a human does: by a message in a thread
that mentions the agent, delivered and dispatched by the normal path (apps.threads,
apps.runs.routing)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.agents.models import Agent
from apps.core.models import TimeStampedModel
from apps.teams.models import Team


class Schedule(TimeStampedModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="schedules")
    # PROTECT: agents are archived, never deleted (an archived agent's firings fail, visibly).
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="schedules")
    cron = models.CharField(max_length=100)
    prompt = models.TextField()
    # Where the prompt is posted: a channel, or (the default) the agent's direct thread.
    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="+")
    timezone = models.CharField(max_length=64, default="UTC")  # IANA name the cron is read in
    enabled = models.BooleanField(default=True)
    # The next due time (UTC); null while disabled. Schedulers fire what is due by now.
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    # The run that took the latest fired prompt (linked once the dispatcher started it).
    last_run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="schedule_due")]

    def __str__(self) -> str:
        return f"schedule {self.pk} ({self.cron}) of {self.agent}"


class FiringStatus(models.TextChoices):
    FIRED = "fired", "Fired"
    # The run of the previous firing was still going: nothing was posted for the agent.
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class ScheduleFiring(models.Model):
    """One due time of a schedule, claimed by exactly one scheduler: the row's insert is the
    claim, and (schedule, due_at) is unique, so a second scheduler's insert fails."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="firings")
    due_at = models.DateTimeField()
    fired_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=FiringStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    # The prompt's message (fired) or the status message saying why not (skipped).
    message = models.ForeignKey(
        "threads.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-due_at"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "due_at"], name="schedule_firing_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=FiringStatus.values), name="firing_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} at {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class TriggerKind(models.TextChoices):
    GENERIC = "generic", "Generic JSON"
    GITHUB = "github", "GitHub"


class Trigger(TimeStampedModel):
    """An inbound webhook: a POST to /hooks/<token>/ becomes a message to an agent."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="triggers")
    # generic: the agent addressed. github: the one agent that may be handed issues (null:
    # any agent of the team that the issue or comment mentions).
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="triggers"
    )
    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=TriggerKind.choices, default=TriggerKind.GENERIC)
    # A Django template; the JSON body is `payload` (blank: the kind's default template).
    template = models.TextField(blank=True)
    # Only the hash of the URL's secret token (apps.core.secretbox.token_hash).
    token_hash = models.CharField(max_length=64, unique=True)
    # github: the X-Hub-Signature-256 secret, encrypted (apps.core.secretbox.encrypt).
    secret_encrypted = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=TriggerKind.values), name="trigger_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} trigger {self.pk} of {self.team}"


class TriggerCall(models.Model):
    """One POST to a trigger's URL, whatever its answer."""

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="calls")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status_code = models.PositiveSmallIntegerField()
    event = models.CharField(max_length=100, blank=True)  # X-GitHub-Event, for github
    summary = models.CharField(max_length=500, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    message = models.ForeignKey(
        "threads.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"call to {self.trigger} → {self.status_code}"
