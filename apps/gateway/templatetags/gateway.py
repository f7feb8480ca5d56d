"""Usage and cost on the pages of other apps: `{% load gateway %}` then
`{% run_usage run %}`, `{% agent_usage agent %}`, `{% spend_chart team %}`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.safestring import SafeString

from apps.gateway import selectors
from apps.gateway.charts import daily_spend, spend_chart_svg
from apps.gateway.models import UsageRecord

register = template.Library()


@register.inclusion_tag("gateway/usage_summary.html")
def run_usage(run: Any) -> dict[str, Any]:
    """What the gateway recorded for the run, and the budget that stopped it, if one did."""
    return {
        "usage": selectors.run_usage(run_id=run.pk),
        "stop": selectors.run_budget_stop(run_id=run.pk),
        "run": run,
    }


@register.inclusion_tag("gateway/usage_summary.html")
def agent_usage(agent: Any, days: int = 30) -> dict[str, Any]:
    """The agent's usage over the last `days` days."""
    since = timezone.now() - timedelta(days=days)
    sums = UsageRecord.objects.filter(agent_id=agent.pk, created_at__gte=since).aggregate(
        requests=Count("id"),
        cost=Sum("cost_usd"),
        **{name: Sum(name) for name in selectors.TOKEN_FIELDS},
    )
    usage: dict[str, Any] = {name: sums[name] or 0 for name in selectors.TOKEN_FIELDS}
    usage["requests"] = sums["requests"]
    usage["cost_usd"] = float(sums["cost"] or 0)
    return {"usage": usage, "days": days}


@register.simple_tag
def spend_chart(team: Any, days: int = 30) -> SafeString:
    return spend_chart_svg(daily_spend(team=team, days=days))
