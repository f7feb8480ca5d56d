"""Budgets the gateway checks before it forwards a model request (null = no limit).

    agent.budget_run_tokens   input + output tokens of the run
    agent.budget_run_usd      cost of the run and of every run it delegated (and theirs), so a
                              lead cannot spend past its budget through its workers: checked for
                              the run and for each run up its delegation chain
    agent.budget_day_usd      the agent's cost since 00:00 UTC
    team.budget_day_usd       the team's cost since 00:00 UTC
    team.budget_month_usd     the team's cost since the 1st, 00:00 UTC

A budget is spent when what was recorded reaches it: the request after the one that crossed
it is refused (a request's cost is known only once its answer is in).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.gateway.models import RunUsage, UsageRecord
from apps.runs.models import Run

AGENT_BUDGETS = ("budget_run_tokens", "budget_run_usd", "budget_day_usd")
TEAM_BUDGETS = ("team.budget_day_usd", "team.budget_month_usd")
BUDGETS = (*AGENT_BUDGETS, *TEAM_BUDGETS)


@dataclass(frozen=True)
class Spent:
    budget: str  # one of BUDGETS
    limit: Decimal
    spent: Decimal
    budget_run_id: int  # whose agent's budget (up the chain, for budget_run_usd)
    message: str


# A run's parent never changes: its chain is looked up once per process.
_lineages: dict[int, tuple[int, ...]] = {}
_lineages_lock = threading.Lock()
MAX_CHAIN = 50


def run_lineage(run: Run) -> tuple[int, ...]:
    """The run's id, then its parent's, and so on up its delegation chain."""
    with _lineages_lock:
        known = _lineages.get(run.pk)
    if known is not None:
        return known
    chain = [run.pk]
    parent = run.parent_id
    while parent is not None and parent not in chain and len(chain) < MAX_CHAIN:
        chain.append(parent)
        parent = Run.objects.filter(pk=parent).values_list("parent_id", flat=True).first()
    lineage = tuple(chain)
    with _lineages_lock:
        if len(_lineages) > 10_000:
            _lineages.clear()
        _lineages[run.pk] = lineage
    return lineage


def _usd(amount: Decimal) -> str:
    return f"${amount:.4f}"


def _limit(limit: Decimal) -> str:
    """0.0500 → 0.05, 5.0000 → 5."""
    return f"{limit.normalize():f}"


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def budget_check(*, run: Run) -> Spent | None:
    """The first budget the run has spent, or None. `run.agent` and `run.team` hold the
    limits (as loaded with the run's token)."""
    agent, team = run.agent, run.team
    lineage = run_lineage(run)
    chain_budgets: dict[int, tuple[Decimal, str]] = {}  # run id → its agent's limit, handle
    if agent.budget_run_usd is not None:
        chain_budgets[run.pk] = (agent.budget_run_usd, agent.handle)
    if len(lineage) > 1:
        for pk, limit, handle in Run.objects.filter(
            pk__in=lineage[1:], agent__budget_run_usd__isnull=False
        ).values_list("pk", "agent__budget_run_usd", "agent__handle"):
            if limit is not None:
                chain_budgets[pk] = (limit, handle)
    if agent.budget_run_tokens is not None or chain_budgets:
        totals = {u.run_id: u for u in RunUsage.objects.filter(run_id__in=lineage)}
        own = totals.get(run.pk)
        if agent.budget_run_tokens is not None:
            tokens = (own.input_tokens + own.output_tokens) if own else 0
            if tokens >= agent.budget_run_tokens:
                return Spent(
                    "budget_run_tokens",
                    Decimal(agent.budget_run_tokens),
                    Decimal(tokens),
                    run.pk,
                    f"ozweb budget budget_run_tokens={agent.budget_run_tokens} spent: "
                    f"{tokens} tokens",
                )
        for pk in lineage:  # the run's own first, then up the chain
            if pk not in chain_budgets:
                continue
            limit, handle = chain_budgets[pk]
            row = totals.get(pk)
            spent = row.tree_cost_usd if row else Decimal(0)
            if spent >= limit:
                whose = (
                    "" if pk == run.pk else f" by run {pk} of @{handle} and the runs it delegated"
                )
                return Spent(
                    "budget_run_usd",
                    limit,
                    spent,
                    pk,
                    f"ozweb budget budget_run_usd={_limit(limit)} spent: {_usd(spent)}{whose}",
                )
    now = timezone.now()
    day = _day_start(now)
    if agent.budget_day_usd is not None:
        spent = _cost(UsageRecord.objects.filter(agent_id=agent.pk, created_at__gte=day))
        if spent >= agent.budget_day_usd:
            return Spent(
                "budget_day_usd",
                agent.budget_day_usd,
                spent,
                run.pk,
                f"ozweb budget budget_day_usd={_limit(agent.budget_day_usd)} spent: {_usd(spent)} "
                f"by @{agent.handle} today (UTC)",
            )
    for budget, limit, since in (
        ("team.budget_day_usd", team.budget_day_usd, day),
        ("team.budget_month_usd", team.budget_month_usd, day.replace(day=1)),
    ):
        if limit is None:
            continue
        spent = _cost(UsageRecord.objects.filter(team_id=team.pk, created_at__gte=since))
        if spent >= limit:
            period = "today (UTC)" if budget.endswith("day_usd") else "this month (UTC)"
            name = budget.removeprefix("team.")
            return Spent(
                budget,
                limit,
                spent,
                run.pk,
                f"ozweb budget team {name}={_limit(limit)} spent: {_usd(spent)} "
                f"by the team {period}",
            )
    return None


def _cost(records: QuerySet[UsageRecord]) -> Decimal:
    total = records.aggregate(total=Sum("cost_usd"))["total"]
    return total if total is not None else Decimal(0)
