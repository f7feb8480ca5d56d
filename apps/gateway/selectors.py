"""Reading usage: a run's totals (the API's `usage`), a team's spend by agent, day or model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDay

from apps.gateway.models import BudgetStop, RunUsage, UsageRecord
from apps.teams.models import Team

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
GROUPS = ("agent", "day", "model")


def _summary(row: RunUsage | None) -> dict[str, Any]:
    summary: dict[str, Any] = {name: getattr(row, name) if row else 0 for name in TOKEN_FIELDS}
    summary["requests"] = row.requests if row else 0
    summary["cost_usd"] = float(row.cost_usd) if row else 0.0
    return summary


def runs_usage(*, run_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """What the gateway recorded for each run (zeros for a run without model traffic)."""
    ids = list(run_ids)
    rows = {row.run_id: row for row in RunUsage.objects.filter(run_id__in=ids)}
    return {pk: _summary(rows.get(pk)) for pk in ids}


def run_usage(*, run_id: int) -> dict[str, Any]:
    return runs_usage(run_ids=[run_id])[run_id]


def run_budget_stop(*, run_id: int) -> BudgetStop | None:
    return BudgetStop.objects.filter(run_id=run_id).first()


@dataclass(frozen=True)
class UsageRow:
    key: str  # the agent's handle, the day (YYYY-MM-DD) or the model
    agent: int | None
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    requests: int
    cost_usd: Decimal


def usage_records(
    *, team: Team, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[UsageRecord]:
    records = UsageRecord.objects.filter(team=team)
    if since is not None:
        records = records.filter(created_at__gte=since)
    if until is not None:
        records = records.filter(created_at__lt=until)
    return records


def team_usage(
    *,
    team: Team,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: str = "day",
) -> list[UsageRow]:
    """The team's usage in [since, until), one row per agent, UTC day or model."""
    records = usage_records(team=team, since=since, until=until)
    sums = {name: Sum(name) for name in (*TOKEN_FIELDS, "cost_usd")}
    grouped: QuerySet[Any, Any]
    if group_by == "agent":
        grouped = records.values("agent_id", "agent__handle").order_by("agent__handle")
    elif group_by == "model":
        grouped = records.values("model").order_by("model")
    else:
        grouped = (
            records.annotate(day=TruncDay("created_at", tzinfo=UTC)).values("day").order_by("day")
        )
    rows = []
    for row in grouped.annotate(requests=Count("id"), **sums):
        if group_by == "agent":
            key, agent = row["agent__handle"] or "(removed)", row["agent_id"]
        elif group_by == "model":
            key, agent = row["model"] or "(unknown)", None
        else:
            day = row["day"]
            key, agent = (day.date().isoformat() if hasattr(day, "date") else str(day)), None
        rows.append(
            UsageRow(
                key=key,
                agent=agent,
                **{name: int(row[name] or 0) for name in TOKEN_FIELDS},
                requests=row["requests"],
                cost_usd=row["cost_usd"] or Decimal(0),
            )
        )
    return rows


@dataclass(frozen=True)
class TeamSpend:
    """What the team's budgets are checked against (apps.gateway.budgets), in UTC."""

    today_usd: Decimal
    month_usd: Decimal


def team_spend(*, team: Team, now: datetime | None = None) -> TeamSpend:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    records = UsageRecord.objects.filter(team_id=team.pk)

    def cost(since: datetime) -> Decimal:
        total = records.filter(created_at__gte=since).aggregate(total=Sum("cost_usd"))["total"]
        return total if total is not None else Decimal(0)

    return TeamSpend(today_usd=cost(day), month_usd=cost(day.replace(day=1)))
