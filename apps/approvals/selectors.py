from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.approvals.models import Approval
from apps.core.errors import NotFound
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team


def approval_list_for_user(
    *, user: User, team: int | None = None, run: int | None = None, status: str | None = None
) -> QuerySet[Approval]:
    """Approvals in the user's teams, newest first, filtered."""
    approvals = Approval.objects.filter(team__memberships__user=user)
    if team is not None:
        approvals = approvals.filter(team_id=team)
    if run is not None:
        approvals = approvals.filter(run_id=run)
    if status:
        approvals = approvals.filter(status=status)
    return approvals.order_by("-id")


def access_approval(
    *, user: User | AnonymousUser, approval_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Approval]:
    """The approval and the user's membership of its team, checked for `role`; another team's
    is NotFound, like a missing one (see access_team)."""
    approval = Approval.objects.select_related("agent").filter(pk=approval_id).first()
    if approval is None:
        raise NotFound()
    membership = access_team(user=user, team_id=approval.team_id, role=role)
    return membership, approval
