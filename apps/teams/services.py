from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.core.errors import Conflict, ServiceError
from apps.core.realtime import broadcast_on_commit
from apps.core.registry import team_setup_steps
from apps.teams.events import access_revoked_event, member_group
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import require_role


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def team_create(*, name: str, owner: User) -> Team:
    name = name.strip()
    if not name:
        raise ServiceError("A team needs a name.", field="name")
    if len(name) > 80:
        raise ServiceError("Team names are at most 80 characters.", field="name")
    if Team.objects.filter(name__iexact=name).exists():
        raise Conflict(f"A team named “{name}” already exists.", field="name")
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name, slug=_unique_slug(name))
    except IntegrityError:  # created at the same moment by someone else
        raise Conflict(f"A team named “{name}” already exists.", field="name") from None
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    for step in team_setup_steps():  # what higher apps give a new team (threads: #general)
        step(team=team, owner=owner)
    return team


@transaction.atomic
def membership_set_role(*, actor: Membership, membership: Membership, role: Role) -> Membership:
    require_role(
        actor, Role.ADMIN, "Only owners and admins can change roles.", team_id=membership.team_id
    )
    if Role.OWNER in (role, membership.role):
        require_role(actor, Role.OWNER, "Only owners can grant or remove the owner role.")
    if membership.role == Role.OWNER and role != Role.OWNER:
        _require_another_owner(membership)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


@transaction.atomic
def membership_remove(*, actor: Membership, membership: Membership) -> None:
    leaving = membership.pk == actor.pk  # anyone may leave; removing others is for admins
    require_role(
        actor,
        Role.VIEWER if leaving else Role.ADMIN,
        "Only owners and admins can remove members.",
        team_id=membership.team_id,
    )
    if membership.role == Role.OWNER:
        require_role(actor, Role.OWNER, "Only owners can remove an owner.")
        _require_another_owner(membership)
    # Their messages, runs and artifacts keep their author (the user, not the membership);
    # their access goes: requests ask for the membership each time, open sockets are closed.
    membership.delete()
    broadcast_on_commit(
        member_group(membership.team_id, membership.user_id), access_revoked_event()
    )


def _require_another_owner(membership: Membership) -> None:
    others = (
        Membership.objects.select_for_update()
        .filter(team_id=membership.team_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
    )
    if not others.exists():
        raise Conflict("A team always keeps at least one owner.", field="role")


HOP_LIMIT_RANGE = (1, 1000)


def team_set_hop_limit(*, actor: Membership, hop_limit: int) -> Team:
    """How many agent-to-agent steps a chain may take before a human must release it."""
    require_role(actor, Role.ADMIN, "Only owners and admins can change team settings.")
    low, high = HOP_LIMIT_RANGE
    if not low <= hop_limit <= high:
        raise ServiceError(f"The hop limit is between {low} and {high}.", field="hop_limit")
    team = actor.team
    team.hop_limit = hop_limit
    team.save(update_fields=["hop_limit", "updated_at"])
    return team
