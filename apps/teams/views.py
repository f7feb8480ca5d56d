"""Team pages. access_team's NotFound and PermissionDenied become the 404 and 403 pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import ServiceError
from apps.core.forms import add_service_error
from apps.core.http import AuthenticatedHttpRequest
from apps.teams import selectors, services
from apps.teams.forms import InviteForm, RoleForm, TeamForm, TeamSettingsForm
from apps.teams.models import Role


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = selectors.team_list_for_user(user=request.user).first()
    if team is None:
        return redirect("team-new")
    return redirect("dashboard-team", team_id=team.pk)


@login_required
def team_new(request: AuthenticatedHttpRequest) -> HttpResponse:
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
def members(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    # Everyone sees the list; inviting is for admins, who alone are shown the form.
    membership = selectors.access_team(
        user=request.user,
        team_id=team_id,
        role=Role.ADMIN if request.method == "POST" else Role.VIEWER,
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
def team_settings(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    actor = selectors.access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
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
            # ErrorList yields message strings (its __getitem__ unwraps ValidationError).
            messages.error(request, error)  # type: ignore[arg-type]
    return redirect("team-members", team_id=team_id)


@login_required
@require_POST
def member_role(request: AuthenticatedHttpRequest, team_id: int, member_id: int) -> HttpResponse:
    actor, member = selectors.access_member(user=request.user, team_id=team_id, member_id=member_id)
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
def member_remove(request: AuthenticatedHttpRequest, team_id: int, member_id: int) -> HttpResponse:
    actor, member = selectors.access_member(user=request.user, team_id=team_id, member_id=member_id)
    try:
        services.membership_remove(actor=actor, membership=member)
        messages.success(request, f"{member.user.username} left the team.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    if member.pk == actor.pk:
        return redirect("home")
    return redirect("team-members", team_id=team_id)
