from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core.models import TimeStampedModel

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# What each role may do is decided by rank: a check asks for "at least" a role.
ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Team(TimeStampedModel):
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80, unique=True)
    # Agent-to-agent chains longer than this wait for a human to release them.
    hop_limit = models.PositiveIntegerField(default=20)
    # Spend limits the model gateway enforces across all the team's agents (null = no limit).
    budget_day_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    budget_month_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="team_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(models.QuerySet["Membership"]):
    def at_least(self, role: Role) -> MembershipQuerySet:
        allowed = [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[role]]
        return self.filter(role__in=allowed)


class Membership(TimeStampedModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    def has_role(self, role: Role) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[role]


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


INVITEE_MAX_LENGTH = 254


def invitee_key(who: str) -> str:
    """How an invitation names its invitee: a username as given, an email address (anything
    with an @) lower-cased."""
    who = who.strip()
    return who.lower() if "@" in who else who


def invitee_keys(user: User) -> set[str]:
    """The invitee names that address `user`: their username, and their email if they have one."""
    keys = {invitee_key(user.get_username())}
    if user.email:
        keys.add(invitee_key(user.email))
    return keys


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self) -> InvitationQuerySet:
        """Pending and not yet past their expiry: the ones that can still be answered."""
        return self.filter(status=InvitationStatus.PENDING, expires_at__gt=timezone.now())

    def addressed_to(self, user: User) -> InvitationQuerySet:
        return self.filter(invitee__in=invitee_keys(user))


class Invitation(TimeStampedModel):
    """An offer to join a team, addressed to a username or an email address. Whether a user by
    that name exists is never part of it: the invitee finds it when they sign in."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    invitee = models.CharField(
        max_length=INVITEE_MAX_LENGTH, help_text="A username, or an email address lower-cased."
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # The invitation link's secret, hashed; the secret itself is shown once, to the inviter.
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    expires_at = models.DateTimeField()
    # Who accepted, declined or revoked it, and when.
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "invitee"],
                condition=models.Q(status=InvitationStatus.PENDING),
                name="invitation_one_pending",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=InvitationStatus.values),
                name="invitation_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="invitation_role_valid"
            ),
        ]
        indexes = [models.Index(fields=["invitee", "status"], name="invitation_invitee_status")]

    def __str__(self) -> str:
        return f"{self.invitee} to {self.team} ({self.status})"

    @property
    def current_status(self) -> InvitationStatus:
        """The status, with a pending invitation past its expiry reported as expired (the row
        says so once a new invitation to the same invitee replaces it)."""
        if self.status == InvitationStatus.PENDING and self.expires_at <= timezone.now():
            return InvitationStatus.EXPIRED
        return InvitationStatus(self.status)
