import pytest

from apps.teams.models import Membership, Role
from tests.conftest import web_client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/teams/new/", "/teams/1/", "/teams/1/members/"])
def test_pages_redirect_to_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_page_logs_in(client, owner):
    response = client.post(
        "/login/", {"username": owner.user.username, "password": "pw-for-tests-1"}
    )

    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_home_goes_to_my_team_or_to_team_creation(web, team):
    assert web.get("/")["Location"] == f"/teams/{team.pk}/"
    assert web_client_for(UserFactory()).get("/")["Location"] == "/teams/new/"


def test_team_new_creates_a_team(web):
    response = web.post("/teams/new/", {"name": "Second"})

    assert response.status_code == 302
    assert "#general" in web.get(response["Location"]).content.decode()


def test_team_new_shows_service_errors_on_the_form(web, team):
    response = web.post("/teams/new/", {"name": team.name})

    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_members_page_invites_by_username(web, team):
    UserFactory(username="grace")

    response = web.post(f"/teams/{team.pk}/members/", {"who": "grace", "role": "member"})

    assert response.status_code == 302
    assert Membership.objects.get(user__username="grace").team == team
    assert "grace joined as member." in web.get(response["Location"]).content.decode()


def test_members_page_shows_invite_errors(web, team):
    response = web.post(f"/teams/{team.pk}/members/", {"who": "nobody", "role": "member"})

    assert response.status_code == 200
    assert "No user has the username or email" in response.content.decode()


def test_a_member_sees_no_invite_form_and_cannot_invite(member, team):
    client = web_client_for(member.user)
    UserFactory(username="grace")

    page = client.get(f"/teams/{team.pk}/members/").content.decode()
    response = client.post(f"/teams/{team.pk}/members/", {"who": "grace", "role": "member"})

    assert "Invite a member" not in page
    assert response.status_code == 403
    assert not Membership.objects.filter(user__username="grace").exists()


def test_member_role_form_changes_a_role(web, team, member):
    response = web.post(f"/teams/{team.pk}/members/{member.pk}/role/", {"role": "admin"})

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.ADMIN


def test_member_remove_keeps_the_last_owner(web, team, owner):
    response = web.post(f"/teams/{team.pk}/members/{owner.pk}/remove/", follow=True)

    assert "A team always keeps at least one owner." in response.content.decode()
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_an_admin_granting_owner_sees_the_error_on_the_form(admin, team):
    UserFactory(username="grace")

    response = web_client_for(admin.user).post(
        f"/teams/{team.pk}/members/", {"who": "grace", "role": "owner"}
    )

    assert response.status_code == 200
    assert "Only owners can make someone an owner." in response.content.decode()
