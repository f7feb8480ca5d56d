"""Invitations: how someone joins a team. An admin invites a username or an email address; the
user it addresses accepts or declines it when they sign in; an admin may revoke it meanwhile.

Nothing here tells the inviter whether a user by that name exists: the invitation is made,
and answered, the same way either way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import Conflict, NotFound, ServiceError
from apps.core.secretbox import token_hash
from apps.teams.models import (
    INVITEE_MAX_LENGTH,
    Invitation,
    InvitationStatus,
    Membership,
    Role,
    invitee_key,
    invitee_keys,
)
from apps.teams.selectors import require_role

INVITATION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # the link's secret: shown to the inviter once, only its hash is kept

    @property
    def link_path(self) -> str:
        """The invitation link, for the inviter to pass on: it works only for the invitee."""
        return reverse("invitation-link", kwargs={"token": self.token})


@transaction.atomic
def invitation_create(*, actor: Membership, who: str, role: Role = Role.MEMBER) -> IssuedInvitation:
    """Invite `who` (a username or an email address) to the actor's team. Inviting someone
    who has a pending invitation renews it: a new link, role and expiry."""
    require_role(actor, Role.ADMIN, "Only owners and admins can invite members.")
    if role == Role.OWNER:
        require_role(actor, Role.OWNER, "Only owners can make someone an owner.")
    invitee = invitee_key(who)
    if not invitee:
        raise ServiceError("Give a username or an email address.", field="who")
    if len(invitee) > INVITEE_MAX_LENGTH:
        raise ServiceError(f"At most {INVITEE_MAX_LENGTH} characters.", field="who")
    # The team's members are no secret to its admins: the members list shows them.
    members = actor.team.memberships.select_related("user")
    if any(invitee in invitee_keys(m.user) for m in members):
        raise ServiceError(f"“{invitee}” is already in this team.", field="who")

    now = timezone.now()
    token = secrets.token_urlsafe(32)
    fields = {
        "role": role,
        "invited_by": actor.user,
        "token_hash": token_hash(token),
        "expires_at": now + INVITATION_LIFETIME,
    }
    pending = Invitation.objects.select_for_update().filter(
        team=actor.team, invitee=invitee, status=InvitationStatus.PENDING
    )
    pending.filter(expires_at__lte=now).update(status=InvitationStatus.EXPIRED, updated_at=now)
    invitation = pending.first()
    if invitation is None:
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(team=actor.team, invitee=invitee, **fields)
        except IntegrityError:  # another admin invited them at the same moment
            raise ServiceError(f"“{invitee}” was invited a moment ago.", field="who") from None
    else:
        for name, value in fields.items():
            setattr(invitation, name, value)
        invitation.save(update_fields=[*fields, "updated_at"])
    return IssuedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_accept(*, user: User, invitation: Invitation) -> Membership:
    """Join the team as the invitation's role. Accepting is a guarded update, so an invitation
    is accepted once; someone already in the team keeps the role they have."""
    _require_addressee(user, invitation)
    _close(invitation, InvitationStatus.ACCEPTED, by=user)
    membership, _ = Membership.objects.get_or_create(
        team_id=invitation.team_id, user=user, defaults={"role": invitation.role}
    )
    return membership


def invitation_decline(*, user: User, invitation: Invitation) -> Invitation:
    _require_addressee(user, invitation)
    return _close(invitation, InvitationStatus.DECLINED, by=user)


def invitation_revoke(*, actor: Membership, invitation: Invitation) -> Invitation:
    require_role(
        actor,
        Role.ADMIN,
        "Only owners and admins can revoke invitations.",
        team_id=invitation.team_id,
    )
    return _close(invitation, InvitationStatus.REVOKED, by=actor.user)


def _require_addressee(user: User, invitation: Invitation) -> None:
    """Another user's invitation does not exist for this one."""
    if invitation.invitee not in invitee_keys(user):
        raise NotFound()


def _close(invitation: Invitation, status: InvitationStatus, *, by: User) -> Invitation:
    """Move a pending, unexpired invitation to `status` with one guarded UPDATE: of two
    answers (or an answer and a revocation) at the same moment, one wins and the other is
    told what happened."""
    now = timezone.now()
    closed = Invitation.objects.filter(
        pk=invitation.pk, status=InvitationStatus.PENDING, expires_at__gt=now
    ).update(status=status, closed_by=by, closed_at=now, updated_at=now)
    invitation.refresh_from_db()
    if not closed:
        current = invitation.current_status
        if current == InvitationStatus.EXPIRED:
            raise Conflict("This invitation has expired.", code="expired")
        raise Conflict(f"This invitation was {current.label.lower()}.", code="not_pending")
    return invitation
