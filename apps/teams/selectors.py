from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.core.errors import NotFound, PermissionDenied
from apps.teams.models import Membership, Role, Team


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
