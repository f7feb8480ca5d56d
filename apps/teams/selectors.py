from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.core.errors import NotFound, PermissionDenied
from apps.core.secretbox import token_hash
from apps.teams.models import Invitation, Membership, Role, Team


def team_list_for_user(*, user: User | AnonymousUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name")


def require_role(
    actor: Membership, role: Role, denied: str | None = None, *, team_id: int | None = None
) -> None:
    """The one role check: `actor` has at least `role` (PermissionDenied, saying `denied`,
    otherwise) and, when `team_id` is given, acts in that team (the team of the row it is
    about to touch)."""
    if team_id is not None and team_id != actor.team_id:
        raise PermissionDenied()
    if not actor.has_role(role):
        raise PermissionDenied(denied or f"This needs the {role.label.lower()} role or higher.")


def access_team(
    *, user: User | AnonymousUser, team_id: int, role: Role = Role.VIEWER
) -> Membership:
    """The user's membership of a team, checked for `role`. A team they are not in does not
    exist for them (NotFound); too low a role is PermissionDenied.

    Every access_<entity> helper ends here (Zulip's access_message): it reads the row by id,
    then asks for the membership of the row's team, so another team's row is the same
    NotFound as a missing one.
    """
    if not user.is_authenticated:
        raise NotFound()
    membership = (
        Membership.objects.select_related("team").filter(user=user, team_id=team_id).first()
    )
    if membership is None:
        raise NotFound()
    if isinstance(user, User):
        membership.user = user  # known already: actor.user needs no query
    require_role(membership, role)
    return membership


def access_member(
    *,
    user: User | AnonymousUser,
    team_id: int,
    member_id: int,
    role: Role = Role.VIEWER,
) -> tuple[Membership, Membership]:
    """The user's membership of the team (checked for `role`) and the team's membership
    `member_id` (NotFound if it is not one of this team's)."""
    actor = access_team(user=user, team_id=team_id, role=role)
    member = Membership.objects.select_related("user").filter(team_id=team_id, pk=member_id).first()
    if member is None:
        raise NotFound()
    return actor, member


def membership_list(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__username")


def invitation_list(*, team: Team, open_only: bool = False) -> QuerySet[Invitation]:
    """A team's invitations (only those still open to an answer, if asked), newest first."""
    invitations = team.invitations.open() if open_only else team.invitations.all()
    return invitations.select_related("team", "invited_by").order_by("-created_at", "-pk")


def invitation_list_for_invitee(*, user: User | AnonymousUser) -> QuerySet[Invitation]:
    """The invitations addressed to the user that they can still answer, newest first."""
    if not user.is_authenticated:
        return Invitation.objects.none()
    return (
        Invitation.objects.open()
        .addressed_to(user)
        .select_related("team", "invited_by")
        .order_by("-created_at", "-pk")
    )


def access_invitation(
    *, user: User | AnonymousUser, team_id: int, invitation_id: int, role: Role = Role.ADMIN
) -> tuple[Membership, Invitation]:
    """The user's membership of the team (checked for `role`: invitations are for admins) and
    the team's invitation `invitation_id` (NotFound if it is not one of this team's)."""
    actor = access_team(user=user, team_id=team_id, role=role)
    invitation = (
        Invitation.objects.select_related("team", "invited_by")
        .filter(team_id=team_id, pk=invitation_id)
        .first()
    )
    if invitation is None:
        raise NotFound()
    return actor, invitation


def access_received_invitation(*, user: User | AnonymousUser, invitation_id: int) -> Invitation:
    """An invitation addressed to the user, whatever its status. Anyone else's is NotFound,
    as a missing one is."""
    return _received(user, pk=invitation_id)


def invitation_for_link(*, user: User | AnonymousUser, token: str) -> Invitation:
    """The invitation an invitation link names, if it is addressed to the user (NotFound
    otherwise: the link is no use to anyone else)."""
    return _received(user, token_hash=token_hash(token))


def _received(user: User | AnonymousUser, **lookup: object) -> Invitation:
    if not user.is_authenticated:
        raise NotFound()
    invitation = (
        Invitation.objects.addressed_to(user)
        .select_related("team", "invited_by")
        .filter(**lookup)
        .first()
    )
    if invitation is None:
        raise NotFound()
    return invitation
