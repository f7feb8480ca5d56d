from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import TimeStampedModel
from apps.teams.models import Team
from harness_image.constants import HARNESS_IMAGE

HANDLE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class Harness(models.TextChoices):
    CLAUDE = "claude", "Claude Code"
    CODEX = "codex", "Codex CLI"
    GEMINI = "gemini", "Gemini CLI"
    OPENCODE = "opencode", "opencode"
    COMMAND = "command", "Command (JSONL protocol)"


class AgentStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    RUNNING = "running", "Running"
    ERROR = "error", "Error"
    DISABLED = "disabled", "Disabled"


class NetworkPolicy(models.TextChoices):
    # Only ozweb's agent API and model gateway (the default).
    OZWEB = "ozweb", "ozweb only"
    # Also outbound HTTPS through the allowlist proxy, to egress_domains.
    EGRESS = "egress", "ozweb and allowlisted HTTPS"


class ApprovalPolicy(models.TextChoices):
    NEVER = "never", "Never ask"
    ASK = "ask", "Ask for every tool call the harness would ask about"
    ASK_WRITES = "ask_writes", "Ask for commands and edits"


class AgentQuerySet(models.QuerySet["Agent"]):
    def active(self) -> AgentQuerySet:
        """Not archived: the agents that take messages and runs."""
        return self.filter(archived_at__isnull=True)

    def archived(self) -> AgentQuerySet:
        return self.filter(archived_at__isnull=False)


class Agent(TimeStampedModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="agents")
    handle = models.CharField(
        max_length=40,
        validators=[RegexValidator(HANDLE_PATTERN, "Lowercase letters, digits, - and _.")],
    )
    display_name = models.CharField(max_length=80)
    harness = models.CharField(max_length=16, choices=Harness.choices, default=Harness.CLAUDE)
    model = models.CharField(max_length=120, blank=True)
    instructions = models.TextField(blank=True)
    # For the command harness: the program to run, as a shell-style argument string.
    command = models.CharField(max_length=500, blank=True)
    image = models.CharField(max_length=200, default=HARNESS_IMAGE)
    setup_commands = models.JSONField(default=list, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    run_timeout_seconds = models.PositiveIntegerField(
        default=1800, validators=[MinValueValidator(10), MaxValueValidator(7 * 24 * 3600)]
    )
    max_concurrent_runs = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    status = models.CharField(max_length=10, choices=AgentStatus.choices, default=AgentStatus.IDLE)
    # The team repository its runs work in (a branch per run), if any.
    repo = models.ForeignKey(
        "repos.Repository", null=True, blank=True, on_delete=models.PROTECT, related_name="agents"
    )
    # The model provider the gateway forwards to; empty = the team's provider of the kind the
    # harness speaks.
    provider = models.ForeignKey(
        "providers.Provider",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="agents",
    )
    # Budgets the gateway enforces (null = no limit).
    budget_run_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    budget_run_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    budget_day_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    network = models.CharField(
        max_length=10, choices=NetworkPolicy.choices, default=NetworkPolicy.OZWEB
    )
    egress_domains = models.JSONField(default=list, blank=True)
    approval_policy = models.CharField(
        max_length=12, choices=ApprovalPolicy.choices, default=ApprovalPolicy.NEVER
    )
    approval_timeout_s = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 3600)]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # An agent is archived, never deleted (apps.runs.archiving): its runs, messages and
    # artifacts stay and show under it, it takes no more work, and its handle is free again.
    archived_at = models.DateTimeField(null=True, blank=True)
    archived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["handle"]
        constraints = [
            # Among the team's agents that are not archived: a new agent may reuse the handle
            # of an archived one.
            models.UniqueConstraint(
                fields=["team", "handle"],
                condition=models.Q(archived_at__isnull=True),
                name="agent_handle_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(harness__in=Harness.values), name="agent_harness_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AgentStatus.values), name="agent_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(network__in=NetworkPolicy.values), name="agent_network_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(approval_policy__in=ApprovalPolicy.values),
                name="agent_approval_policy_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def initials(self) -> str:
        return (self.display_name or self.handle)[:2].upper()


class AgentSecret(TimeStampedModel):
    """A write-only secret: stored encrypted, handed to the agent's process, never shown."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=100)
    ciphertext = models.TextField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "name"], name="agent_secret_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} secret {self.name}"
