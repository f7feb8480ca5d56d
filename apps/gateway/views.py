"""Pages: a team's model providers (admins), its spend, and "raise the budget and resume"."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.errors import ServiceError
from apps.core.forms import add_service_error, form_save
from apps.core.http import AuthenticatedHttpRequest
from apps.gateway.charts import daily_spend, spend_chart_svg
from apps.gateway.forms import BudgetRaiseForm, ProviderForm, TeamBudgetsForm
from apps.gateway.selectors import team_spend, team_usage
from apps.gateway.services import budget_raise_and_resume
from apps.providers import services
from apps.providers.prices import DEFAULT_PRICES
from apps.providers.selectors import access_provider, provider_list
from apps.runs.selectors import access_run
from apps.teams.models import Role
from apps.teams.selectors import access_team

USAGE_DAYS = 30


@login_required
def provider_list_page(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    actor = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
    form = ProviderForm(request.POST or None)
    created = form_save(
        request, form, lambda: services.provider_create(actor=actor, **form.service_fields())
    )
    if created is not None:
        messages.success(request, f"Provider {created.value.name} added.")
        return redirect("providers", team_id=actor.team_id)
    return render(
        request,
        "gateway/providers.html",
        {
            "team": actor.team,
            "providers": provider_list(team=actor.team),
            "form": form,
            "default_models": sorted(DEFAULT_PRICES),
        },
    )


@login_required
def provider_edit_page(request: AuthenticatedHttpRequest, provider_id: int) -> HttpResponse:
    actor, provider = access_provider(user=request.user, provider_id=provider_id, role=Role.ADMIN)
    initial = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "prices": json.dumps(provider.prices, indent=2) if provider.prices else "",
    }
    form = ProviderForm(request.POST or None, initial=initial, editing=True)
    if form_save(
        request,
        form,
        lambda: services.provider_update(actor=actor, provider=provider, **form.service_fields()),
    ):
        messages.success(request, f"Provider {provider.name} saved.")
        return redirect("providers", team_id=actor.team_id)
    return render(
        request,
        "gateway/provider_edit.html",
        {"team": actor.team, "provider": provider, "form": form},
    )


@login_required
@require_POST
def provider_delete_page(request: AuthenticatedHttpRequest, provider_id: int) -> HttpResponse:
    actor, provider = access_provider(user=request.user, provider_id=provider_id, role=Role.ADMIN)
    services.provider_delete(actor=actor, provider=provider)
    messages.success(request, f"Provider {provider.name} deleted.")
    return redirect("providers", team_id=actor.team_id)


@login_required
def usage_page(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id)
    team = membership.team
    budgets = TeamBudgetsForm(
        request.POST or None,
        initial={"budget_day_usd": team.budget_day_usd, "budget_month_usd": team.budget_month_usd},
    )
    # The team's budgets: admins only (the service says so to anyone else).
    if request.method == "POST" and budgets.is_valid():
        try:
            services.team_set_budgets(actor=membership, **budgets.cleaned_data)
        except ServiceError as exc:
            if exc.field in budgets.fields:
                add_service_error(budgets, exc)
            else:  # e.g. not an admin: the page has no form to show it on
                messages.error(request, exc.message)
        else:
            messages.success(request, "The team's budgets are saved.")
            return redirect("usage", team_id=team.pk)
    since = timezone.now() - timedelta(days=USAGE_DAYS)
    days = daily_spend(team=team, days=USAGE_DAYS)
    return render(
        request,
        "gateway/usage.html",
        {
            "team": team,
            "days": USAGE_DAYS,
            "chart": spend_chart_svg(days),
            "by_agent": team_usage(team=team, since=since, group_by="agent"),
            "by_model": team_usage(team=team, since=since, group_by="model"),
            "total": sum((d.cost_usd for d in days), Decimal(0)),
            "spend": team_spend(team=team),
            "budgets": budgets,
            "can_set_budgets": membership.has_role(Role.ADMIN),
        },
    )


@login_required
@require_POST
def budget_raise_page(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    actor, run = access_run(user=request.user, run_id=run_id)
    form = BudgetRaiseForm(request.POST)
    value = form.cleaned_data.get("value") if form.is_valid() else None
    try:
        stop = budget_raise_and_resume(actor=actor, run=run, value=value)
    except ServiceError as exc:
        if request.htmx:
            return HttpResponse(exc.message, status=exc.status_code)
        messages.error(request, exc.message)
    else:
        if request.htmx:  # from the thread: the new run shows up there by itself
            return HttpResponse(status=204)
        messages.success(
            request,
            f"{stop.budget} raised to {stop.raised_to.normalize() if stop.raised_to else ''}; "
            f"run {stop.resumed_by_id} resumes the work.",
        )
    if run.thread_id is not None:
        return redirect("thread", thread_id=run.thread_id)
    return redirect("run-detail", run_id=run.pk)
