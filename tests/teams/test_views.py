import pytest
from django.test import Client
from django.utils import timezone

from apps.teams import invitations
from apps.teams.models import Invitation, InvitationStatus, Membership, Role
from tests.conftest import web_client_for
from tests.factories import InvitationFactory, MembershipFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path", ["/", "/teams/new/", "/teams/1/", "/teams/1/members/", "/invitations/"]
)
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


@pytest.mark.parametrize("who", ["grace", "nobody"])
def test_the_invite_form_makes_an_invitation_with_the_same_message_for_anyone(web, team, who):
    UserFactory(username="grace")

    response = web.post(f"/teams/{team.pk}/members/", {"who": who, "role": "member"})

    assert response.status_code == 302
    invitation = Invitation.objects.get(team=team)
    assert (invitation.invitee, invitation.status) == (who, "pending")
    assert not Membership.objects.filter(user__username=who).exists()
    page = web.get(response["Location"]).content.decode()
    assert f"Invited “{who}” as member. They see the invitation when they sign in" in page
    assert "http://testserver/invitations/link/" in page
    assert f'id="team-invitation-{invitation.pk}"' in page  # in the pending list, to revoke


def test_members_page_shows_invite_errors(web, team, member):
    response = web.post(
        f"/teams/{team.pk}/members/", {"who": member.user.username, "role": "member"}
    )

    assert response.status_code == 200
    assert "is already in this team" in response.content.decode()


def test_a_member_sees_no_invite_form_and_cannot_invite(member, team):
    client = web_client_for(member.user)

    page = client.get(f"/teams/{team.pk}/members/").content.decode()
    response = client.post(f"/teams/{team.pk}/members/", {"who": "grace", "role": "member"})

    assert "Invite a member" not in page
    assert "Pending invitations" not in page
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_an_admin_revokes_from_the_members_page(admin, team):
    invitation = InvitationFactory(team=team, invitee="grace")

    response = web_client_for(admin.user).post(
        f"/teams/{team.pk}/invitations/{invitation.pk}/revoke/", follow=True
    )

    assert "The invitation of “grace” is revoked." in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.REVOKED


def test_a_member_cannot_revoke(member, team):
    invitation = InvitationFactory(team=team, invitee="grace")

    response = web_client_for(member.user).post(
        f"/teams/{team.pk}/invitations/{invitation.pk}/revoke/"
    )

    assert response.status_code == 403
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_the_invitee_without_a_team_is_sent_to_their_invitations(team):
    grace = UserFactory(username="grace")
    InvitationFactory(team=team, invitee="grace")
    client = web_client_for(grace)

    assert client.get("/")["Location"] == "/invitations/"
    page = client.get("/invitations/").content.decode()
    assert f"You're invited to <strong>{team.name}</strong> as member" in page
    assert "Accept" in page and "Decline" in page


def test_the_invitee_sees_the_invitation_on_their_dashboard(team):
    theirs = MembershipFactory(role=Role.OWNER)
    invitation = InvitationFactory(team=team, invitee=theirs.user.username)

    page = web_client_for(theirs.user).get(f"/teams/{theirs.team_id}/").content.decode()

    assert f'id="invitation-{invitation.pk}"' in page
    assert f"You're invited to <strong>{team.name}</strong>" in page
    assert f'hx-post="/invitations/{invitation.pk}/accept/"' in page


def test_accepting_over_htmx_joins_and_goes_to_the_team(team):
    grace = UserFactory(username="grace")
    invitation = InvitationFactory(team=team, invitee="grace", role=Role.VIEWER)

    response = web_client_for(grace).post(f"/invitations/{invitation.pk}/accept/", **HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/teams/{team.pk}/"
    assert Membership.objects.get(user=grace).role == Role.VIEWER


def test_accepting_without_htmx_redirects_to_the_team(team):
    grace = UserFactory(username="grace")
    invitation = InvitationFactory(team=team, invitee="grace")

    response = web_client_for(grace).post(f"/invitations/{invitation.pk}/accept/", follow=True)

    assert response.redirect_chain[-1][0] == f"/teams/{team.pk}/"
    assert f"You joined {team.name} as member." in response.content.decode()


def test_declining_over_htmx_returns_the_row(team):
    grace = UserFactory(username="grace")
    invitation = InvitationFactory(team=team, invitee="grace")

    response = web_client_for(grace).post(f"/invitations/{invitation.pk}/decline/", **HTMX)

    assert response.status_code == 200
    assert f'id="invitation-{invitation.pk}"' in response.content.decode()
    assert "declined" in response.content.decode()
    assert not Membership.objects.filter(user=grace).exists()


def test_an_expired_invitation_answers_with_the_reason(team):
    grace = UserFactory(username="grace")
    invitation = InvitationFactory(team=team, invitee="grace")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())

    response = web_client_for(grace).post(f"/invitations/{invitation.pk}/accept/", **HTMX)

    assert response.status_code == 422
    assert "This invitation has expired." in response.content.decode()
    assert not Membership.objects.filter(user=grace).exists()


def test_someone_elses_invitation_is_a_404(team):
    invitation = InvitationFactory(team=team, invitee="grace")
    client = web_client_for(UserFactory(username="mallory"))

    for action in ["accept", "decline"]:
        assert client.post(f"/invitations/{invitation.pk}/{action}/").status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_the_invitation_link_opens_it_for_the_invitee_only(owner, team):
    grace = UserFactory(username="grace")
    issued = invitations.invitation_create(actor=owner, who="grace")

    page = web_client_for(grace).get(issued.link_path)
    stranger = web_client_for(UserFactory()).get(issued.link_path)
    anonymous = Client().get(issued.link_path)

    assert page.status_code == 200
    assert f"You're invited to <strong>{team.name}</strong>" in page.content.decode()
    assert stranger.status_code == 404
    assert anonymous.status_code == 302


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
