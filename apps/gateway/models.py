"""What the model gateway records: every model request's usage as the provider reported it,
each run's totals, and the budgets that stopped runs."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from apps.agents.models import Agent
from apps.providers.models import Provider
from apps.runs.models import Run
from apps.teams.models import Team


class UsageRecord(models.Model):
    """One request through the gateway: tokens as the provider's answer reported them (input
    excludes cached input, as Anthropic counts it), what they cost, how long it took."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="+")
    agent = models.ForeignKey(Agent, null=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.ForeignKey(Provider, null=True, on_delete=models.SET_NULL, related_name="+")
    model = models.CharField(max_length=200, blank=True)
    path = models.CharField(max_length=300, blank=True)  # upstream path, no query
    status = models.PositiveSmallIntegerField()  # the provider's HTTP status (0: no answer)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_input_tokens = models.PositiveBigIntegerField(default=0)
    cache_creation_input_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    ttfb_ms = models.PositiveIntegerField(null=True)  # to the provider's first byte
    latency_ms = models.PositiveIntegerField(default=0)  # to the answer's last byte
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["team", "created_at"], name="usage_team_time"),
            models.Index(fields=["agent", "created_at"], name="usage_agent_time"),
            models.Index(fields=["run"], name="usage_run"),
        ]

    def __str__(self) -> str:
        return f"usage {self.pk} of run {self.run_id} ({self.model})"


class RunUsage(models.Model):
    """A run's totals, kept with each record (a budget check reads one row per run of its
    delegation chain). `tree_cost_usd` adds the runs it delegated, and theirs."""

    run = models.OneToOneField(Run, primary_key=True, on_delete=models.CASCADE, related_name="+")
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_input_tokens = models.PositiveBigIntegerField(default=0)
    cache_creation_input_tokens = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    tree_cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))

    def __str__(self) -> str:
        return f"usage of run {self.run_id}"


class BudgetStop(models.Model):
    """A budget that refused a run's model request (the run then ended failed). An admin may
    raise it and resume: `resumed_by` is the run that continued."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    budget = models.CharField(max_length=40)  # e.g. "budget_run_tokens", "team.budget_day_usd"
    # The run whose agent's budget it is (a delegation chain's lead, for budget_run_usd).
    budget_run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="+")
    limit = models.DecimalField(max_digits=20, decimal_places=4)
    spent = models.DecimalField(max_digits=20, decimal_places=8)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    raised_to = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    resumed_by = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"{self.budget} stopped run {self.run_id}"
