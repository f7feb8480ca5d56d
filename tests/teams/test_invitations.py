"""Invitations: an admin invites a username or an email; the user it addresses answers it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import NotFound, PermissionDenied, ServiceError
from apps.core.secretbox import token_hash
from apps.teams import invitations, selectors
from apps.teams.models import (
    Invitation,
    InvitationStatus,
    Membership,
    Role,
)
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def invite(actor, who="grace", role=Role.MEMBER) -> Invitation:
    return invitations.invitation_create(actor=actor, who=who, role=role).invitation


def expire(invitation: Invitation) -> None:
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    invitation.refresh_from_db()


def test_inviting_makes_a_pending_invitation_and_no_membership(owner):
    grace = UserFactory(username="grace")

    issued = invitations.invitation_create(actor=owner, who=" grace ", role=Role.VIEWER)

    invitation = issued.invitation
    assert (invitation.team, invitation.invitee, invitation.role) == (owner.team, "grace", "viewer")
    assert (invitation.status, invitation.invited_by) == (InvitationStatus.PENDING, owner.user)
    remaining = invitation.expires_at - timezone.now()
    assert timedelta(days=6, hours=23) < remaining <= invitations.INVITATION_LIFETIME
    assert not Membership.objects.filter(user=grace).exists()
    # Only the link secret's hash is stored.
    assert issued.token not in invitation.token_hash
    assert invitation.token_hash == token_hash(issued.token)
    assert issued.link_path == f"/invitations/link/{issued.token}/"


def test_an_invitation_is_the_same_whether_or_not_the_user_exists(owner):
    UserFactory(username="grace")

    for_grace = invite(owner, "grace")
    for_nobody = invite(owner, "nobody")

    fields = ["team_id", "role", "status", "invited_by_id", "closed_by_id", "closed_at"]
    assert [getattr(for_grace, f) for f in fields] == [getattr(for_nobody, f) for f in fields]
    assert for_nobody.invitee == "nobody"


def test_an_email_address_is_lower_cased_and_reaches_the_user_with_that_email(owner):
    linus = UserFactory(username="linus", email="Linus@Example.com")

    invitation = invite(owner, "  LINUS@example.COM ")

    assert invitation.invitee == "linus@example.com"
    assert list(selectors.invitation_list_for_invitee(user=linus)) == [invitation]


def test_usernames_are_matched_exactly(owner):
    UserFactory(username="grace")
    other_grace = UserFactory(username="Grace", email="")

    invite(owner, "grace")

    assert list(selectors.invitation_list_for_invitee(user=other_grace)) == []


def test_inviting_refuses_blank_names_and_people_already_in_the_team(owner, member):
    with pytest.raises(ServiceError, match="Give a username"):
        invite(owner, "   ")
    with pytest.raises(ServiceError, match="already in this team"):
        invite(owner, member.user.username)
    with pytest.raises(ServiceError, match="already in this team"):
        invite(owner, member.user.email.upper())

    assert not Invitation.objects.exists()


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_only_admins_and_owners_invite(team, role):
    actor = MembershipFactory(team=team, role=role)

    with pytest.raises(PermissionDenied):
        invite(actor, "newbie")

    assert not Invitation.objects.exists()


def test_an_admin_invites_but_not_as_owner(owner, admin):
    with pytest.raises(PermissionDenied, match="Only owners can make someone an owner"):
        invite(admin, "newbie", Role.OWNER)

    assert invite(admin, "newbie", Role.ADMIN).role == Role.ADMIN
    assert invite(owner, "boss", Role.OWNER).role == Role.OWNER


def test_inviting_again_renews_the_pending_invitation(owner, admin):
    first = invitations.invitation_create(actor=owner, who="grace", role=Role.VIEWER)
    Invitation.objects.filter(pk=first.invitation.pk).update(
        expires_at=timezone.now() + timedelta(hours=1)
    )

    again = invitations.invitation_create(actor=admin, who="grace", role=Role.MEMBER)

    renewed = Invitation.objects.get()
    assert renewed.pk == first.invitation.pk == again.invitation.pk
    assert (renewed.role, renewed.invited_by) == (Role.MEMBER, admin.user)
    assert renewed.token_hash == token_hash(again.token) != first.invitation.token_hash
    assert renewed.expires_at > timezone.now() + timedelta(days=6)


def test_inviting_after_expiry_marks_the_old_invitation_expired(owner):
    old = invite(owner, "grace")
    expire(old)

    new = invite(owner, "grace")

    old.refresh_from_db()
    assert new.pk != old.pk
    assert (old.status, new.status) == (InvitationStatus.EXPIRED, InvitationStatus.PENDING)


def test_accepting_makes_the_membership_once(owner):
    grace = UserFactory(username="grace")
    invitation = invite(owner, "grace", Role.VIEWER)
    stale_copy = Invitation.objects.get(pk=invitation.pk)

    membership = invitations.invitation_accept(user=grace, invitation=invitation)

    assert (membership.team, membership.user, membership.role) == (owner.team, grace, "viewer")
    invitation.refresh_from_db()
    assert (invitation.status, invitation.closed_by) == (InvitationStatus.ACCEPTED, grace)
    assert invitation.closed_at is not None
    # A second answer, even one that read the invitation while it was pending, loses.
    for again in [invitation, stale_copy]:
        with pytest.raises(ServiceError, match="was accepted") as caught:
            invitations.invitation_accept(user=grace, invitation=again)
        assert caught.value.code == "not_pending"
    with pytest.raises(ServiceError, match="was accepted"):
        invitations.invitation_decline(user=grace, invitation=stale_copy)
    assert Membership.objects.filter(user=grace).count() == 1


def test_accepting_by_email_address(owner):
    linus = UserFactory(username="linus", email="linus@example.com")
    invitation = invite(owner, "Linus@Example.com")

    invitations.invitation_accept(user=linus, invitation=invitation)

    assert Membership.objects.filter(team=owner.team, user=linus).exists()


def test_someone_already_in_the_team_keeps_their_role_on_accepting(owner):
    grace = UserFactory(username="grace")
    invitation = invite(owner, "grace", Role.ADMIN)
    MembershipFactory(team=owner.team, user=grace, role=Role.VIEWER)

    membership = invitations.invitation_accept(user=grace, invitation=invitation)

    assert membership.role == Role.VIEWER
    assert Membership.objects.filter(user=grace).count() == 1


def test_another_users_invitation_does_not_exist_for_them(owner):
    invitation = invite(owner, "grace")
    mallory = UserFactory(username="mallory")

    with pytest.raises(NotFound):
        invitations.invitation_accept(user=mallory, invitation=invitation)
    with pytest.raises(NotFound):
        invitations.invitation_decline(user=mallory, invitation=invitation)
    with pytest.raises(NotFound):
        selectors.access_received_invitation(user=mallory, invitation_id=invitation.pk)

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING
    assert not Membership.objects.filter(user=mallory).exists()


def test_declining(owner):
    grace = UserFactory(username="grace")
    invitation = invite(owner, "grace")

    declined = invitations.invitation_decline(user=grace, invitation=invitation)

    assert (declined.status, declined.closed_by) == (InvitationStatus.DECLINED, grace)
    assert not Membership.objects.filter(user=grace).exists()
    assert list(selectors.invitation_list_for_invitee(user=grace)) == []
    with pytest.raises(ServiceError, match="was declined"):
        invitations.invitation_accept(user=grace, invitation=invitation)


def test_an_admin_revokes_and_the_invitee_can_no_longer_accept(owner, admin):
    grace = UserFactory(username="grace")
    invitation = invite(owner, "grace")

    revoked = invitations.invitation_revoke(actor=admin, invitation=invitation)

    assert (revoked.status, revoked.closed_by) == (InvitationStatus.REVOKED, admin.user)
    with pytest.raises(ServiceError, match="was revoked"):
        invitations.invitation_accept(user=grace, invitation=invitation)
    with pytest.raises(ServiceError, match="was revoked"):
        invitations.invitation_revoke(actor=admin, invitation=invitation)
    assert not Membership.objects.filter(user=grace).exists()


def test_members_and_other_teams_cannot_revoke(owner, member, other_team):
    invitation = invite(owner, "grace")

    with pytest.raises(PermissionDenied):
        invitations.invitation_revoke(actor=member, invitation=invitation)
    with pytest.raises(PermissionDenied):
        invitations.invitation_revoke(actor=other_team["owner"], invitation=invitation)

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_an_expired_invitation_cannot_be_answered(owner):
    grace = UserFactory(username="grace")
    invitation = invite(owner, "grace")
    expire(invitation)

    assert invitation.current_status == InvitationStatus.EXPIRED
    assert list(selectors.invitation_list_for_invitee(user=grace)) == []
    for answer in [invitations.invitation_accept, invitations.invitation_decline]:
        with pytest.raises(ServiceError, match="expired") as caught:
            answer(user=grace, invitation=invitation)
        assert caught.value.code == "expired"
    with pytest.raises(ServiceError, match="expired"):
        invitations.invitation_revoke(actor=owner, invitation=invitation)
    assert not Membership.objects.filter(user=grace).exists()


def test_the_invitee_lists_only_their_open_invitations(owner, other_team):
    grace = UserFactory(username="grace", email="grace@example.com")
    by_name = invite(owner, "grace")
    by_email = invite(other_team["owner"], "grace@example.com")
    invite(owner, "someone-else")
    declined = invite(MembershipFactory(team=TeamFactory(), role=Role.OWNER))
    invitations.invitation_decline(user=grace, invitation=declined)

    assert list(selectors.invitation_list_for_invitee(user=grace)) == [by_email, by_name]


def test_the_team_list_is_the_teams_own(owner, other_team):
    ours = invite(owner, "grace")
    invite(other_team["owner"], "grace")
    revoked = invite(owner, "linus")
    invitations.invitation_revoke(actor=owner, invitation=revoked)

    assert list(selectors.invitation_list(team=owner.team)) == [revoked, ours]
    assert list(selectors.invitation_list(team=owner.team, open_only=True)) == [ours]


def test_access_invitation_is_for_the_teams_admins(owner, member, other_team):
    ours = invite(owner, "grace")
    theirs = invite(other_team["owner"], "grace")

    assert selectors.access_invitation(
        user=owner.user, team_id=owner.team_id, invitation_id=ours.pk
    ) == (owner, ours)
    with pytest.raises(NotFound):
        selectors.access_invitation(user=owner.user, team_id=owner.team_id, invitation_id=theirs.pk)
    with pytest.raises(PermissionDenied):
        selectors.access_invitation(user=member.user, team_id=owner.team_id, invitation_id=ours.pk)


def test_the_link_opens_the_invitation_for_its_invitee_only(owner):
    grace = UserFactory(username="grace")
    issued = invitations.invitation_create(actor=owner, who="grace")

    assert selectors.invitation_for_link(user=grace, token=issued.token) == issued.invitation
    with pytest.raises(NotFound):
        selectors.invitation_for_link(user=UserFactory(), token=issued.token)
    with pytest.raises(NotFound):
        selectors.invitation_for_link(user=grace, token=issued.token + "x")
