"""Team pages. access_team's NotFound and PermissionDenied become the 404 and 403 pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.core.errors import ServiceError
from apps.core.forms import add_service_error
from apps.core.http import AuthenticatedHttpRequest
from apps.teams import invitations, selectors, services
from apps.teams.forms import InviteForm, RoleForm, TeamForm, TeamSettingsForm
from apps.teams.models import Invitation, Role


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    team = selectors.team_list_for_user(user=request.user).first()
    if team is None:
        invited = selectors.invitation_list_for_invitee(user=request.user).exists()
        return redirect("invitations" if invited else "team-new")
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
            issued = invitations.invitation_create(
                actor=membership, who=form.cleaned_data["who"], role=Role(form.cleaned_data["role"])
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            # The same words whether or not such a user exists.
            invitation = issued.invitation
            messages.success(
                request,
                f"Invited “{invitation.invitee}” as {invitation.role}. They see the invitation "
                f"when they sign in; you can also send them this link, which only they can "
                f"use: {request.build_absolute_uri(issued.link_path)}",
            )
            return redirect("team-members", team_id=team_id)
    return render(
        request,
        "teams/members.html",
        {
            "team": membership.team,
            "membership": membership,
            "members": selectors.membership_list(team=membership.team),
            "invitations": (
                selectors.invitation_list(team=membership.team, open_only=True)
                if membership.has_role(Role.ADMIN)
                else []
            ),
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


@login_required
@require_POST
def invitation_revoke(
    request: AuthenticatedHttpRequest, team_id: int, invitation_id: int
) -> HttpResponse:
    actor, invitation = selectors.access_invitation(
        user=request.user, team_id=team_id, invitation_id=invitation_id
    )
    try:
        invitations.invitation_revoke(actor=actor, invitation=invitation)
        messages.success(request, f"The invitation of “{invitation.invitee}” is revoked.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("team-members", team_id=team_id)


@login_required
def invitation_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The invitations addressed to the signed-in user, to accept or decline."""
    received = selectors.invitation_list_for_invitee(user=request.user)
    return render(request, "teams/invitations.html", {"invitations": list(received)})


@login_required
def invitation_link(request: AuthenticatedHttpRequest, token: str) -> HttpResponse:
    """Where an invitation link leads: that invitation, if it is addressed to this user."""
    invitation = selectors.invitation_for_link(user=request.user, token=token)
    return render(request, "teams/invitations.html", {"invitations": [invitation]})


@login_required
@require_POST
def invitation_accept(request: AuthenticatedHttpRequest, invitation_id: int) -> HttpResponse:
    invitation = selectors.access_received_invitation(
        user=request.user, invitation_id=invitation_id
    )
    try:
        membership = invitations.invitation_accept(user=request.user, invitation=invitation)
    except ServiceError as exc:
        return _invitation_answer(request, invitation, error=exc.message)
    messages.success(request, f"You joined {invitation.team.name} as {membership.role}.")
    dashboard = reverse("dashboard-team", kwargs={"team_id": membership.team_id})
    if request.htmx:
        return HttpResponseClientRedirect(dashboard)
    return redirect(dashboard)


@login_required
@require_POST
def invitation_decline(request: AuthenticatedHttpRequest, invitation_id: int) -> HttpResponse:
    invitation = selectors.access_received_invitation(
        user=request.user, invitation_id=invitation_id
    )
    try:
        invitation = invitations.invitation_decline(user=request.user, invitation=invitation)
    except ServiceError as exc:
        return _invitation_answer(request, invitation, error=exc.message)
    return _invitation_answer(request, invitation)


def _invitation_answer(
    request: AuthenticatedHttpRequest, invitation: Invitation, *, error: str | None = None
) -> HttpResponse:
    """htmx gets the invitation's refreshed row (422 with the error); a plain form post a
    redirect to the invitations page."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"You declined the invitation to {invitation.team.name}.")
        return redirect("invitations")
    return render(
        request,
        "teams/invitations.html#invitation",
        {"invitation": invitation, "error": error},
        status=422 if error else 200,
    )
