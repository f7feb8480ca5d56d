from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from apps.core.errors import NotFound, PermissionDenied
from apps.teams.models import Membership, Role, Team


def team_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name")


def membership_get(*, user: AbstractBaseUser | AnonymousUser, team_id: int) -> Membership:
    """The user's membership of a team; a team they are not in does not exist for them."""
    if not user.is_authenticated:
        raise NotFound()
    membership = (
        Membership.objects.select_related("team").filter(user=user, team_id=team_id).first()
    )
    if membership is None:
        raise NotFound()
    return membership


def membership_require(
    *, user: AbstractBaseUser | AnonymousUser, team_id: int, role: Role = Role.VIEWER
) -> Membership:
    membership = membership_get(user=user, team_id=team_id)
    if not membership.has_role(role):
        raise PermissionDenied(f"This needs the {role.label.lower()} role or higher.")
    return membership


def membership_list(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__username")
