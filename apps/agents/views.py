"""Agent pages. The access_<entity> selectors' NotFound and PermissionDenied are the 404 and
403 pages. Opening an agent's direct thread is a threads view (apps.threads.views); archiving
one, which stops its runs, is a runs view (apps.runs.views)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render

from apps.agents import selectors, services
from apps.agents.forms import AgentForm
from apps.core.errors import ServiceError
from apps.core.forms import add_service_error
from apps.core.http import AuthenticatedHttpRequest
from apps.harnesses import capabilities_of
from apps.teams.models import Role
from apps.teams.selectors import access_team


@login_required
def agent_list(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id)
    archived = request.GET.get("archived") == "1"
    return render(
        request,
        "agents/agent_list.html",
        {
            "team": membership.team,
            "membership": membership,
            "archived": archived,
            "agents": selectors.agent_list(team=membership.team, archived=archived),
            "archived_count": (
                0 if archived else selectors.agent_list(team=membership.team, archived=True).count()
            ),
        },
    )


@login_required
def agent_new(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
    form = AgentForm(request.POST or None, team=membership.team)
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
def agent_detail(request: AuthenticatedHttpRequest, agent_id: int) -> HttpResponse:
    membership, agent = selectors.access_agent(user=request.user, agent_id=agent_id)
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
            # An archived agent's page is its history: the direct thread to read, not to open.
            "direct_thread": agent.direct_threads.first() if agent.is_archived else None,
        },
    )


@login_required
def agent_edit(request: AuthenticatedHttpRequest, agent_id: int) -> HttpResponse:
    membership, agent = selectors.access_agent(
        user=request.user, agent_id=agent_id, role=Role.ADMIN
    )
    if agent.is_archived:
        messages.error(request, f"@{agent.handle} is archived: its page is kept as history.")
        return redirect("agent-detail", agent_id=agent.pk)
    form = AgentForm(
        request.POST or None, initial=AgentForm.initial_for(agent), team=membership.team
    )
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
