"""Serializers of model providers, usage and budgets (the model gateway, apps/gateway)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.patterns import NOT_BLANK
from apps.gateway.selectors import run_usage
from apps.providers.models import Provider, ProviderKind


class ProviderInput(serializers.Serializer):
    """`api_key` is write-only: stored encrypted, never answered."""

    name = serializers.RegexField(NOT_BLANK, max_length=80)
    # A choice, so the schema lists the kinds; an unknown one gets the service's own message.
    kind = serializers.ChoiceField(
        choices=ProviderKind.choices,
        help_text=f"The API it speaks: {', '.join(ProviderKind.values)}.",
        error_messages={
            "invalid_choice": "Unknown provider kind; choose one of "
            + ", ".join(ProviderKind.values)
            + "."
        },
    )
    base_url = serializers.CharField(
        max_length=500,
        help_text="Where its API is: https://api.anthropic.com, https://api.openai.com/v1, "
        "https://generativelanguage.googleapis.com. The gateway appends the harness's path.",
    )
    api_key = serializers.CharField(max_length=4096, write_only=True, trim_whitespace=True)
    prices = serializers.DictField(
        required=False,
        help_text="USD per million tokens by model, overriding the built-in table: "
        '{"<model>": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}.',
    )


class ProviderOutput(serializers.ModelSerializer):
    team = serializers.IntegerField(source="team_id")

    class Meta:
        model = Provider
        fields = ["id", "team", "name", "kind", "base_url", "prices", "created_at"]


class RunUsageOutput(serializers.Serializer):
    """What the gateway recorded of the run's model requests; `reported` is what the harness
    said about itself (its own counting, kept beside)."""

    input_tokens = serializers.IntegerField(help_text="Input tokens, without cached input.")
    output_tokens = serializers.IntegerField()
    cache_read_input_tokens = serializers.IntegerField()
    cache_creation_input_tokens = serializers.IntegerField()
    requests = serializers.IntegerField(help_text="Model requests through the gateway.")
    cost_usd = serializers.FloatField()
    reported = serializers.DictField(help_text="The harness's own report of its usage.")


class UsageRowOutput(serializers.Serializer):
    key = serializers.CharField(help_text="The agent's handle, the UTC day, or the model.")
    agent = serializers.IntegerField(allow_null=True)
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_input_tokens = serializers.IntegerField()
    cache_creation_input_tokens = serializers.IntegerField()
    requests = serializers.IntegerField()
    cost_usd = serializers.FloatField()


class TeamUsageOutput(serializers.Serializer):
    group_by = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    rows = UsageRowOutput(many=True)
    total = UsageRowOutput()


class BudgetRaiseInput(serializers.Serializer):
    value = serializers.DecimalField(
        max_digits=20,
        decimal_places=4,
        required=False,
        allow_null=True,
        coerce_to_string=False,
        help_text="The new limit (tokens or USD); omitted: twice what was spent.",
    )


class BudgetRaiseOutput(serializers.Serializer):
    budget = serializers.CharField()
    value = serializers.FloatField()
    run = serializers.IntegerField(help_text="The run that resumes the stopped one.")


def run_usage_payload(run: Any) -> dict[str, Any]:
    """A run's `usage` in the API: the gateway's records, and the harness's report."""
    return {**run_usage(run_id=run.pk), "reported": run.usage or {}}


def _usd_field(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=0,
        required=False,
        allow_null=True,
        help_text=help_text + " US dollars; null: no limit.",
    )


class AgentGatewayInput(serializers.Serializer):
    """The agent's model provider and budgets (apps.providers.services.agent_set_gateway)."""

    provider = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="One of the team's providers; null: the team's provider of the kind the "
        "harness speaks (none: the agent's own key secrets).",
    )
    budget_run_tokens = serializers.IntegerField(
        min_value=1,
        max_value=10**15,
        required=False,
        allow_null=True,
        help_text="Input + output tokens per run; null: no limit.",
    )
    budget_run_usd = _usd_field("Cost per run, with the runs it delegates (and theirs).")
    budget_day_usd = _usd_field("The agent's cost per UTC day.")


class TeamBudgetsInput(serializers.Serializer):
    budget_day_usd = _usd_field("The team's cost per UTC day.")
    budget_month_usd = _usd_field("The team's cost per calendar month (UTC).")


AGENT_GATEWAY_FIELDS = list(AgentGatewayInput().fields)
TEAM_BUDGET_FIELDS = list(TeamBudgetsInput().fields)


def split_gateway_fields(data: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Takes the gateway's fields out of validated input (other services refuse them)."""
    return {name: data.pop(name) for name in names if name in data}
