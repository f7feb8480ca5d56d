import pytest
from django.contrib.auth.models import AnonymousUser

from apps.core.errors import NotFound, PermissionDenied, ServiceError
from apps.teams import selectors, services
from apps.teams.models import Membership, Role
from apps.threads.models import Thread, ThreadKind
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_team_create_makes_the_creator_owner_and_a_general_channel():
    user = UserFactory()

    team = services.team_create(name="  Platform  ", owner=user)

    assert team.name == "Platform"
    assert team.slug == "platform"
    assert Membership.objects.get(team=team, user=user).role == Role.OWNER
    general = Thread.objects.get(team=team)
    assert (general.name, general.kind) == ("general", ThreadKind.CHANNEL)


def test_team_create_refuses_blank_and_duplicate_names_case_insensitively():
    user = UserFactory()
    services.team_create(name="Platform", owner=user)

    with pytest.raises(ServiceError, match="already exists"):
        services.team_create(name="platform", owner=user)
    with pytest.raises(ServiceError, match="needs a name"):
        services.team_create(name="   ", owner=user)


def test_team_create_gives_distinct_slugs_to_names_that_slugify_alike():
    user = UserFactory()

    first = services.team_create(name="Data Team", owner=user)
    second = services.team_create(name="Data-Team", owner=user)

    assert first.slug == "data-team"
    assert second.slug == "data-team-2"


def test_owner_grants_owner(owner, member):
    services.membership_set_role(actor=owner, membership=member, role=Role.OWNER)

    member.refresh_from_db()
    assert member.role == Role.OWNER


def test_admin_cannot_grant_or_take_the_owner_role(owner, admin, member):
    with pytest.raises(PermissionDenied):
        services.membership_set_role(actor=admin, membership=member, role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.membership_set_role(actor=admin, membership=owner, role=Role.MEMBER)

    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_admin_changes_roles_below_owner(admin, member):
    services.membership_set_role(actor=admin, membership=member, role=Role.VIEWER)

    member.refresh_from_db()
    assert member.role == Role.VIEWER


def test_member_cannot_change_roles(member, viewer):
    with pytest.raises(PermissionDenied):
        services.membership_set_role(actor=member, membership=viewer, role=Role.MEMBER)


def test_the_last_owner_cannot_be_demoted(owner):
    with pytest.raises(ServiceError, match="at least one owner"):
        services.membership_set_role(actor=owner, membership=owner, role=Role.ADMIN)

    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_an_owner_can_step_down_when_another_owner_remains(owner, team):
    second = MembershipFactory(team=team, role=Role.OWNER)

    services.membership_set_role(actor=owner, membership=owner, role=Role.MEMBER)

    assert set(team.memberships.filter(role=Role.OWNER)) == {second}


def test_the_last_owner_cannot_be_removed_or_leave(owner):
    with pytest.raises(ServiceError, match="at least one owner"):
        services.membership_remove(actor=owner, membership=owner)

    assert Membership.objects.filter(pk=owner.pk).exists()


def test_admin_removes_members_but_not_owners(admin, member, owner):
    services.membership_remove(actor=admin, membership=member)

    assert not Membership.objects.filter(pk=member.pk).exists()
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=admin, membership=owner)


def test_a_member_can_leave_but_not_remove_others(member, viewer):
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=member, membership=viewer)

    services.membership_remove(actor=member, membership=member)

    assert not Membership.objects.filter(pk=member.pk).exists()


def test_services_refuse_memberships_of_another_team(owner):
    stranger = MembershipFactory(team=TeamFactory(), role=Role.MEMBER)

    with pytest.raises(PermissionDenied):
        services.membership_set_role(actor=owner, membership=stranger, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=owner, membership=stranger)


def test_access_team_ranks_roles(team, viewer, member):
    assert selectors.access_team(user=member.user, team_id=team.pk, role=Role.MEMBER) == member
    with pytest.raises(PermissionDenied, match="member role or higher"):
        selectors.access_team(user=viewer.user, team_id=team.pk, role=Role.MEMBER)


def test_access_team_hides_other_teams_and_anonymous_users(owner, other_team):
    for user in [owner.user, AnonymousUser()]:
        with pytest.raises(NotFound):
            selectors.access_team(user=user, team_id=other_team["team"].pk)


def test_access_member_finds_only_members_of_the_team(owner, member, other_team):
    actor, found = selectors.access_member(
        user=owner.user, team_id=owner.team_id, member_id=member.pk
    )
    assert (actor, found) == (owner, member)
    with pytest.raises(NotFound):
        selectors.access_member(
            user=owner.user, team_id=owner.team_id, member_id=other_team["owner"].pk
        )


def test_require_role_checks_the_team_then_the_role(owner, viewer, other_team):
    selectors.require_role(owner, Role.OWNER, team_id=owner.team_id)
    with pytest.raises(PermissionDenied, match="Admins only"):
        selectors.require_role(viewer, Role.ADMIN, "Admins only.")
    with pytest.raises(PermissionDenied):
        selectors.require_role(owner, Role.VIEWER, team_id=other_team["team"].pk)


def test_team_list_for_user_shows_only_their_teams(owner, other_team):
    assert list(selectors.team_list_for_user(user=owner.user)) == [owner.team]
