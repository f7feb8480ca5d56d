from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models

from apps.agents.models import Agent
from apps.core.models import TimeStampedModel
from apps.teams.models import Team


class ThreadKind(models.TextChoices):
    CHANNEL = "channel", "Channel"
    DIRECT = "direct", "Direct"


class Thread(TimeStampedModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="threads")
    kind = models.CharField(max_length=10, choices=ThreadKind.choices, default=ThreadKind.CHANNEL)
    name = models.CharField(max_length=80)
    topic = models.CharField(max_length=250, blank=True)
    # A direct thread is between the team's humans and exactly one agent.
    # PROTECT: an agent is archived, never deleted; its direct thread stays as history.
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="direct_threads"
    )
    # The seq of the newest message; the next message takes last_seq + 1.
    last_seq = models.PositiveBigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            # Channels are addressed by name. A direct thread is its agent's (one each, below):
            # a new agent that reuses an archived one's handle gets a thread of the same name.
            models.UniqueConstraint(
                fields=["team", "name"],
                condition=models.Q(kind="channel"),
                name="thread_name_unique",
            ),
            models.UniqueConstraint(
                fields=["team", "agent"],
                condition=models.Q(kind="direct"),
                name="thread_one_direct_per_agent",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="channel", agent__isnull=True)
                    | models.Q(kind="direct", agent__isnull=False)
                ),
                name="thread_direct_has_agent",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"#{self.name}" if self.kind == ThreadKind.CHANNEL else f"@{self.name}"


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    TOOL_CALL = "tool_call", "Tool call"
    TOOL_RESULT = "tool_result", "Tool result"
    STATUS = "status", "Status"
    ERROR = "error", "Error"
    ARTIFACT = "artifact", "Artifact"
    # A tool call waiting for a human's approve/deny (apps.approvals).
    APPROVAL = "approval", "Approval"
    # A change card: a run's branch became a reviewable change or a new version (apps.repos).
    CHANGE = "change", "Change"
    # A review sent to the agent that wrote a change or an artifact version.
    REVIEW = "review", "Review"


class Message(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=12, choices=MessageKind.choices, default=MessageKind.TEXT)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    body = models.TextField(blank=True)
    # Kind-specific structure: a tool call's name and input, a result's exit code, ...
    data = models.JSONField(default=dict, blank=True)
    # The run that produced this message (agent output), if any.
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    # How many agent-to-agent steps led here: 0 for a human's message.
    hop = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["thread", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["thread", "seq"], name="message_seq_unique"),
            models.CheckConstraint(
                condition=models.Q(kind__in=MessageKind.values), name="message_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.thread} #{self.seq}"

    def delivery_rows(self) -> list[Delivery]:
        """Deliveries attached by the writer (no query), else the prefetched ones."""
        attached = getattr(self, "delivery_list", None)
        return attached if attached is not None else list(self.deliveries.all())

    @property
    def author_name(self) -> str:
        # No query for an empty foreign key: the descriptor returns None for a null id.
        if (agent := self.author_agent) is not None:
            return agent.display_name
        if (user := self.author_user) is not None:
            return user.get_full_name() or user.get_username()
        return "ozweb"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    ACKED = "acked", "Acknowledged"
    FAILED = "failed", "Failed"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    """Named filters for the delivery state machine (apps/threads/deliveries.py owns it)."""

    def waiting(self) -> DeliveryQuerySet:
        """Pending and not held: the agent should get these."""
        return self.filter(state=DeliveryState.PENDING, held=False)

    def dispatchable(self, *, now: datetime) -> DeliveryQuerySet:
        """Waiting, owned by no run, and not backing off after a failed start: a dispatch
        hands these to a live run or starts one."""
        return (
            self.waiting()
            .filter(run__isnull=True)
            .filter(models.Q(retry_at__isnull=True) | models.Q(retry_at__lte=now))
        )

    def overdue(self, *, now: datetime, stale: datetime) -> DeliveryQuerySet:
        """Dispatchable ones whose dispatch should have happened by now (it was lost, or its
        retry time has come): the reconciler dispatches them again."""
        return self.dispatchable(now=now).filter(
            models.Q(retry_at__isnull=True, created_at__lt=stale) | models.Q(retry_at__lte=now)
        )

    def for_run_of(self, *, agent_id: int, thread_id: int, run_id: int) -> DeliveryQuerySet:
        """Waiting messages a run of `agent_id` in `thread_id` may take: not delegations (they
        get runs of their own) unless they are this run's, and not owned by another run."""
        # (parent none or this run) and (run none or this run), with `run_id` used once, so
        # that a prepared query (apps.core.prepared) can bind it.
        return (
            self.waiting()
            .filter(agent_id=agent_id, message__thread_id=thread_id)
            .filter(models.Q(parent_run__isnull=True, run__isnull=True) | models.Q(run_id=run_id))
        )

    def unfinished(self) -> DeliveryQuerySet:
        """Not yet acknowledged nor failed."""
        return self.exclude(state__in=[DeliveryState.ACKED, DeliveryState.FAILED])


class Delivery(TimeStampedModel):
    """One message addressed to one agent, tracked until the agent has it (or it failed)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="deliveries")
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    reason = models.CharField(max_length=500, blank=True)
    # The run that took (or is taking) this message to the agent.
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    # Past the team's hop limit a delivery waits, visibly, for a human to release it.
    held = models.BooleanField(default=False)
    # A delegation: the run that delegated this goal (its child run reports back to it).
    parent_run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="delegations"
    )
    # Failed attempts to start a run for it; retried with backoff until the limit.
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "agent"], name="delivery_unique"),
            models.CheckConstraint(
                condition=models.Q(state__in=DeliveryState.values), name="delivery_state_valid"
            ),
        ]
        indexes = [models.Index(fields=["agent", "state"], name="delivery_agent_state")]

    def __str__(self) -> str:
        return f"{self.message} → {self.agent} ({self.state})"


class ThreadReadState(models.Model):
    """How far a human has read a thread; unread = thread.last_seq - last_read_seq."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="read_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "user"], name="read_state_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.thread} to {self.last_read_seq}"
