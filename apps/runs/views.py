"""Run pages; starting a run or the demo from the agent and dashboard pages, and archiving an
agent (which stops its runs). The access_<entity> selectors' NotFound and PermissionDenied are
the 404 and 403 pages."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_POST

from apps.agents.selectors import access_agent
from apps.core.errors import ServiceError
from apps.core.http import AuthenticatedHttpRequest
from apps.harnesses import capabilities_of
from apps.runs import archiving, selectors
from apps.runs.creation import run_start
from apps.runs.routing import run_send_message
from apps.runs.scenario import scenario_start
from apps.runs.transitions import run_request_cancel
from apps.teams.models import Role
from apps.teams.selectors import access_team


class RunForm(forms.Form):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False)


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), strip=False)


@login_required
def run_detail(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    membership, run = selectors.access_run(user=request.user, run_id=run_id)
    root, tree = selectors.run_tree(run=run)
    return render(
        request,
        "runs/run_detail.html",
        {
            "team": membership.team,
            "membership": membership,
            "run": run,
            "tree": tree if len(tree) > 1 else [],
            "capabilities": capabilities_of(run.harness),
            "events": selectors.run_events(run=run, limit=1000),
            # An archived agent's runs are history: nobody replies to them.
            "can_act": membership.has_role(Role.MEMBER) and not run.agent.is_archived,
            "reply_form": ReplyForm(),
        },
    )


@login_required
@require_POST
def run_cancel(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    membership, run = selectors.access_run(user=request.user, run_id=run_id)
    try:
        run_request_cancel(actor=membership, run=run)
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("run-detail", run_id=run.pk)


@login_required
@require_POST
def run_reply(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    membership, run = selectors.access_run(user=request.user, run_id=run_id)
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            run_send_message(actor=membership, run=run, body=form.cleaned_data["body"])
            messages.success(request, "Sent. It reaches the agent as soon as its harness allows.")
        except ServiceError as exc:
            messages.error(request, exc.message)
    return redirect("run-detail", run_id=run.pk)


@login_required
@require_POST
def agent_run(request: AuthenticatedHttpRequest, agent_id: int) -> HttpResponse:
    membership, agent = access_agent(user=request.user, agent_id=agent_id)
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the agent something to do.")
        return redirect("agent-detail", agent_id=agent.pk)
    try:
        run = run_start(
            actor=membership, agent=agent, prompt=form.cleaned_data["prompt"], thread=None
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("agent-detail", agent_id=agent.pk)
    return redirect("run-detail", run_id=run.pk)


@login_required
def agent_archive(request: AuthenticatedHttpRequest, agent_id: int) -> HttpResponse:
    """The agent page's "Archive": a confirmation naming the live runs it stops (GET), then
    the archive (POST). Its history stays on its page."""
    membership, agent = access_agent(user=request.user, agent_id=agent_id, role=Role.ADMIN)
    if agent.is_archived:
        return redirect("agent-detail", agent_id=agent.pk)
    if request.method == "POST":
        try:
            stopped = archiving.agent_archive(actor=membership, agent=agent)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect("agent-detail", agent_id=agent.pk)
        runs = f" and stopped {len(stopped)} live run{pluralize(len(stopped))}" if stopped else ""
        messages.success(request, f"Archived @{agent.handle}{runs}; its history stays here.")
        return redirect("agent-detail", agent_id=agent.pk)
    return render(
        request,
        "agents/agent_archive.html",
        {
            "team": membership.team,
            "agent": agent,
            "live_runs": selectors.run_list_live(agent=agent),
        },
    )


@login_required
@require_POST
def scenario(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    """Start the collaboration demo (offline agents) and open its thread."""
    membership = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
    try:
        message = scenario_start(actor=membership)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard-team", team_id=team_id)
    return redirect("thread", thread_id=message.thread_id)
