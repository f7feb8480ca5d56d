from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.agents import selectors, services
from apps.agents.forms import AgentForm
from apps.agents.models import Agent
from apps.core.errors import ServiceError
from apps.core.forms import add_service_error
from apps.runs.harnesses import capabilities_of
from apps.teams.models import Membership, Role
from apps.teams.views import membership_or_404
from apps.threads.services import thread_direct_get_or_create


def _agent_or_404(request: HttpRequest, agent_id: int) -> tuple[Membership, Agent]:
    agent = Agent.objects.filter(pk=agent_id, team__memberships__user=request.user).first()
    if agent is None:
        raise Http404
    return membership_or_404(request, agent.team_id), agent


@login_required
def agent_list(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = membership_or_404(request, team_id)
    return render(
        request,
        "agents/agent_list.html",
        {
            "team": membership.team,
            "membership": membership,
            "agents": selectors.agent_list(team=membership.team),
        },
    )


@login_required
def agent_new(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = membership_or_404(request, team_id, Role.ADMIN)
    form = AgentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            agent = services.agent_create(actor=membership, **form.service_fields())
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"@{agent.handle} is ready.")
            return redirect("agent-detail", agent_id=agent.pk)
    return render(
        request, "agents/agent_form.html", {"team": membership.team, "form": form, "agent": None}
    )


@login_required
def agent_detail(request: HttpRequest, agent_id: int) -> HttpResponse:
    membership, agent = _agent_or_404(request, agent_id)
    return render(
        request,
        "agents/agent_detail.html",
        {
            "team": membership.team,
            "membership": membership,
            "agent": agent,
            "secret_names": [s.name for s in agent.secrets.all()],
            "capabilities": capabilities_of(agent.harness),
            "runs": agent.runs.order_by("-id")[:10],
        },
    )


@login_required
def agent_edit(request: HttpRequest, agent_id: int) -> HttpResponse:
    membership, agent = _agent_or_404(request, agent_id)
    if not membership.has_role(Role.ADMIN):
        raise Http404
    form = AgentForm(request.POST or None, initial=AgentForm.initial_for(agent))
    if request.method == "POST" and form.is_valid():
        try:
            services.agent_update(actor=membership, agent=agent, **form.service_fields())
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Saved @{agent.handle}.")
            return redirect("agent-detail", agent_id=agent.pk)
    return render(
        request,
        "agents/agent_form.html",
        {
            "team": membership.team,
            "form": form,
            "agent": agent,
            "secret_names": [s.name for s in agent.secrets.all()],
        },
    )


@login_required
@require_POST
def agent_delete(request: HttpRequest, agent_id: int) -> HttpResponse:
    membership, agent = _agent_or_404(request, agent_id)
    try:
        services.agent_delete(actor=membership, agent=agent)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("agent-detail", agent_id=agent_id)
    messages.success(request, f"@{agent.handle} was deleted.")
    return redirect("agent-list", team_id=membership.team_id)


@login_required
@require_POST
def agent_direct_thread(request: HttpRequest, agent_id: int) -> HttpResponse:
    membership, agent = _agent_or_404(request, agent_id)
    try:
        thread = thread_direct_get_or_create(actor=membership, agent=agent)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("agent-detail", agent_id=agent_id)
    return redirect("thread", thread_id=thread.pk)
