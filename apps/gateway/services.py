"""Writing what the gateway learns: usage records (and each run's totals), budget stops, and
an admin's "raise the budget and resume"."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import F

from apps.agents.models import Agent
from apps.core.errors import Conflict, NotFound, ServiceError
from apps.gateway.budgets import BUDGETS, Spent, run_lineage
from apps.gateway.metering import Usage
from apps.gateway.models import BudgetStop, RunUsage, UsageRecord
from apps.providers.models import Provider
from apps.providers.prices import price_for
from apps.runs.creation import NewRun, run_create
from apps.runs.models import ACTIVE_STATUSES, Run
from apps.runs.transitions import post_status
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import require_role

RESUME_PROMPT = (
    "An admin raised the budget that stopped your previous run. Continue the task where you "
    "left off."
)


@transaction.atomic
def usage_record(
    *,
    run: Run,
    provider: Provider,
    path: str,
    status: int,
    usage: Usage,
    ttfb_ms: int | None,
    latency_ms: int,
) -> UsageRecord:
    """One request's usage, priced by the provider's table (then the built-in one), added to
    the run's totals and to the delegation tree cost of each run up its chain."""
    price = price_for(model=usage.model, overrides=provider.prices)
    cost = price.cost_usd(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read=usage.cache_read_input_tokens,
        cache_write=usage.cache_creation_input_tokens,
    )
    record = UsageRecord.objects.create(
        team_id=run.team_id,
        run_id=run.pk,
        agent_id=run.agent_id,
        provider_id=provider.pk,
        model=usage.model[:200],
        path=path[:300],
        status=status,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        cost_usd=cost,
        ttfb_ms=ttfb_ms,
        latency_ms=latency_ms,
    )
    lineage = run_lineage(run)
    totals = {
        "input_tokens": F("input_tokens") + usage.input_tokens,
        "output_tokens": F("output_tokens") + usage.output_tokens,
        "cache_read_input_tokens": F("cache_read_input_tokens") + usage.cache_read_input_tokens,
        "cache_creation_input_tokens": F("cache_creation_input_tokens")
        + usage.cache_creation_input_tokens,
        "requests": F("requests") + 1,
        "cost_usd": F("cost_usd") + cost,
    }
    if not RunUsage.objects.filter(run_id=run.pk).update(**totals):
        # The run's first request: its row, and those of its chain that are not there yet.
        RunUsage.objects.bulk_create([RunUsage(run_id=pk) for pk in lineage], ignore_conflicts=True)
        RunUsage.objects.filter(run_id=run.pk).update(**totals)
    if cost:
        RunUsage.objects.filter(run_id__in=lineage).update(tree_cost_usd=F("tree_cost_usd") + cost)
    return record


@transaction.atomic
def budget_stop(*, run: Run, spent: Spent) -> BudgetStop:
    """A budget refused the run's request: remember which (once per run), put it on the run
    as its error, and say so in its thread with the admins' "raise and resume" action. The
    harness got an error it does not retry, so it ends its turn and the run ends failed."""
    stop, created = BudgetStop.objects.get_or_create(
        run=run,
        defaults={
            "team_id": run.team_id,
            "budget": spent.budget,
            "budget_run_id": spent.budget_run_id,
            "limit": spent.limit,
            "spent": spent.spent,
            "message": spent.message[:500],
        },
    )
    if created:
        Run.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(error=spent.message)
        post_status(
            run,
            f"@{run.agent.handle}'s run {run.pk} was stopped: {spent.message}.",
            budget_stop={"run": run.pk, "budget": spent.budget, "message": spent.message},
        )
    return stop


def _raised_value(stop: BudgetStop, value: Any) -> Decimal:
    if value in (None, ""):
        # Twice what was spent (at least twice the limit): room for the rest of the task.
        return max(stop.limit * 2, (stop.spent * 2).quantize(Decimal("0.0001")))
    try:
        raised = Decimal(str(value))
    except InvalidOperation:
        raise ServiceError("The new budget is a number.", field="value") from None
    if not raised.is_finite() or raised <= stop.spent:
        raise ServiceError(
            f"The new budget must be above what was spent ({stop.spent.normalize()}).",
            field="value",
        )
    if stop.budget == "budget_run_tokens" and raised != raised.to_integral_value():
        raise ServiceError("A token budget is a whole number.", field="value")
    if raised >= Decimal("1e8"):
        raise ServiceError("The new budget is too large.", field="value")
    return raised


def budget_raise_and_resume(*, actor: Membership, run: Run, value: Any = None) -> BudgetStop:
    """An admin raises the budget that stopped `run` (to `value`, or to twice what was spent)
    and resumes it: a new run continues the agent's harness session in the same thread."""
    require_role(
        actor, Role.ADMIN, "Only owners and admins can raise budgets.", team_id=run.team_id
    )
    with transaction.atomic():
        stop = BudgetStop.objects.select_for_update().filter(run=run).first()
        if stop is None:
            raise NotFound("No budget stopped this run.")
        if stop.resumed_by_id is not None:
            raise Conflict(
                f"Already raised and resumed as run {stop.resumed_by_id}.", code="already_resumed"
            )
        if stop.budget not in BUDGETS:
            raise ServiceError(f"Unknown budget {stop.budget!r}.")
        raised = _raised_value(stop, value)
        if stop.budget.startswith("team."):
            Team.objects.filter(pk=run.team_id).update(
                **{stop.budget.removeprefix("team."): raised}
            )
        else:
            budget_run = stop.budget_run or run
            new_value: Decimal | int = int(raised) if stop.budget == "budget_run_tokens" else raised
            Agent.objects.filter(pk=budget_run.agent_id).update(**{stop.budget: new_value})
        run.agent.refresh_from_db()
        resumed = run_create(
            NewRun(
                agent=run.agent,
                prompt=RESUME_PROMPT,
                thread=run.thread,
                parent=run.parent,
                created_by=actor.user,
                hop=run.hop,
            )
        )
        stop.raised_to, stop.resumed_by = raised, resumed
        stop.save(update_fields=["raised_to", "resumed_by"])
    return stop
