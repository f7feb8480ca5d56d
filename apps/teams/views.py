from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as Forbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.agents.selectors import agent_list
from apps.core.errors import NotFound, PermissionDenied, ServiceError
from apps.core.forms import add_service_error
from apps.teams import selectors, services
from apps.teams.forms import InviteForm, RoleForm, TeamForm, TeamSettingsForm
from apps.teams.models import Membership, Role
from apps.threads.selectors import recent_activity, thread_list


def membership_or_404(request: HttpRequest, team_id: int, role: Role = Role.VIEWER) -> Membership:
    try:
        return selectors.membership_require(user=request.user, team_id=team_id, role=role)
    except NotFound:
        raise Http404 from None
    except PermissionDenied as exc:
        raise Forbidden(exc.message) from None


@login_required
def home(request: HttpRequest) -> HttpResponse:
    team = selectors.team_list_for_user(user=request.user).first()
    if team is None:
        return redirect("team-new")
    return redirect("dashboard-team", team_id=team.pk)


@login_required
def dashboard(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = membership_or_404(request, team_id)
    team = membership.team
    return render(
        request,
        "teams/dashboard.html",
        {
            "team": team,
            "membership": membership,
            "threads": list(thread_list(team=team, user=request.user)),
            "agents": list(agent_list(team=team)),
            "activity": recent_activity(team=team),
        },
    )


@login_required
def team_new(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            return redirect("dashboard-team", team_id=team.pk)
    return render(request, "teams/team_new.html", {"form": form})


@login_required
def members(request: HttpRequest, team_id: int) -> HttpResponse:
    # Everyone sees the list; inviting is for admins, who alone are shown the form.
    membership = membership_or_404(
        request, team_id, Role.ADMIN if request.method == "POST" else Role.VIEWER
    )
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_invite(
                actor=membership, who=form.cleaned_data["who"], role=Role(form.cleaned_data["role"])
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"{member.user.username} joined as {member.role}.")
            return redirect("team-members", team_id=team_id)
    return render(
        request,
        "teams/members.html",
        {
            "team": membership.team,
            "membership": membership,
            "members": selectors.membership_list(team=membership.team),
            "form": form,
            "roles": Role.choices,
            "settings_form": TeamSettingsForm(initial={"hop_limit": membership.team.hop_limit}),
        },
    )


@login_required
@require_POST
def team_settings(request: HttpRequest, team_id: int) -> HttpResponse:
    actor = membership_or_404(request, team_id, Role.ADMIN)
    form = TeamSettingsForm(request.POST)
    if form.is_valid():
        try:
            team = services.team_set_hop_limit(
                actor=actor, hop_limit=form.cleaned_data["hop_limit"]
            )
            messages.success(request, f"The hop limit is now {team.hop_limit}.")
        except ServiceError as exc:
            messages.error(request, exc.message)
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect("team-members", team_id=team_id)


@login_required
@require_POST
def member_role(request: HttpRequest, team_id: int, member_id: int) -> HttpResponse:
    actor = membership_or_404(request, team_id)
    member = Membership.objects.filter(team_id=team_id, pk=member_id).select_related("user").first()
    if member is None:
        raise Http404
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_set_role(
                actor=actor, membership=member, role=Role(form.cleaned_data["role"])
            )
            messages.success(request, f"{member.user.username} is now {form.cleaned_data['role']}.")
        except ServiceError as exc:
            messages.error(request, exc.message)
    return redirect("team-members", team_id=team_id)


@login_required
@require_POST
def member_remove(request: HttpRequest, team_id: int, member_id: int) -> HttpResponse:
    actor = membership_or_404(request, team_id)
    member = Membership.objects.filter(team_id=team_id, pk=member_id).select_related("user").first()
    if member is None:
        raise Http404
    try:
        services.membership_remove(actor=actor, membership=member)
        messages.success(request, f"{member.user.username} left the team.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    if member.pk == actor.pk:
        return redirect("home")
    return redirect("team-members", team_id=team_id)
