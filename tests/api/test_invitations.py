"""Inviting (POST /teams/{id}/members/) and answering invitations over the REST API. The
answer to an invitation never says whether a user by that name exists."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.teams.models import Invitation, InvitationStatus, Membership, Role
from tests.conftest import api_client_for, web_client_for
from tests.factories import InvitationFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def grace(db):
    return UserFactory(username="grace", email="grace@example.com")


def invite(client, team, who, role="member"):
    return client.post(
        f"/api/v1/teams/{team.pk}/members/", {"who": who, "role": role}, format="json"
    )


def without_identity(body: dict) -> dict:
    """The answer less what differs between any two invitations."""
    invitation = {
        k: v
        for k, v in body["invitation"].items()
        if k not in {"id", "invitee", "created_at", "expires_at"}
    }
    return {"keys": sorted(body), "invitation": invitation}


def test_inviting_answers_202_with_a_pending_invitation(owner_api, team, owner, grace):
    response = invite(owner_api, team, "grace", "viewer")

    assert response.status_code == 202
    body = response.json()
    invitation = body["invitation"]
    assert sorted(invitation) == [
        "closed_at", "created_at", "expires_at", "id", "invited_by", "invitee", "role", "status",
        "team", "team_name",
    ]  # fmt: skip
    assert (invitation["team"], invitation["team_name"]) == (team.pk, team.name)
    assert (invitation["invitee"], invitation["role"], invitation["status"]) == (
        "grace",
        "viewer",
        "pending",
    )
    assert invitation["invited_by"] == owner.user.username
    assert body["accept_url"].startswith("http://testserver/invitations/link/")
    assert not Membership.objects.filter(user=grace).exists()


@pytest.mark.parametrize(
    ("known", "unknown"), [("grace", "nobody"), ("Grace@Example.com", "nobody@example.com")]
)
def test_the_answer_is_the_same_whether_or_not_the_user_exists(
    owner_api, team, grace, known, unknown
):
    for_grace = invite(owner_api, team, known)
    for_nobody = invite(owner_api, team, unknown)

    assert for_grace.status_code == for_nobody.status_code == 202
    assert without_identity(for_grace.json()) == without_identity(for_nobody.json())
    assert for_grace.json()["invitation"]["invitee"] == known.lower()


def test_the_answer_never_shows_the_users_email(owner_api, team, grace):
    body = invite(owner_api, team, "grace").json()

    assert "grace@example.com" not in json.dumps(body)
    assert "user" not in body["invitation"]


def test_inviting_someone_already_in_the_team_is_400(owner_api, team, member):
    response = invite(owner_api, team, member.user.username)

    assert response.status_code == 400
    assert response.json()["field"] == "who"
    assert "already in this team" in response.json()["detail"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"who": ""}, {"who": "   "}, {"who": "x" * 255}, {"who": "grace", "role": "god"}],
)
def test_bad_invitations_are_400(owner_api, team, payload):
    response = owner_api.post(f"/api/v1/teams/{team.pk}/members/", payload, format="json")

    assert response.status_code == 400
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_cannot_invite(team, grace, role):
    actor = MembershipFactory(team=team, role=role)

    response = invite(api_client_for(actor.user), team, "grace")

    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_an_admin_cannot_invite_an_owner(admin, team, grace):
    response = invite(api_client_for(admin.user), team, "grace", "owner")

    assert response.status_code == 403
    assert response.json()["detail"] == "Only owners can make someone an owner."
    assert not Invitation.objects.exists()


def test_the_invitee_lists_accepts_and_joins_once(owner_api, team, grace):
    invitation_id = invite(owner_api, team, "grace", "viewer").json()["invitation"]["id"]
    client = api_client_for(grace)

    listed = client.get("/api/v1/invitations/").json()
    accepted = client.post(f"/api/v1/invitations/{invitation_id}/accept/")
    again = client.post(f"/api/v1/invitations/{invitation_id}/accept/")

    assert [i["id"] for i in listed["results"]] == [invitation_id]
    assert listed["results"][0]["team_name"] == team.name
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert client.get(f"/api/v1/teams/{team.pk}/").json()["role"] == "viewer"
    assert again.status_code == 409
    assert again.json()["code"] == "not_pending"
    assert Membership.objects.filter(team=team, user=grace).count() == 1
    assert client.get("/api/v1/invitations/").json()["results"] == []


def test_the_invitee_declines(team, grace):
    invitation = InvitationFactory(team=team, invitee="grace")
    client = api_client_for(grace)

    response = client.post(f"/api/v1/invitations/{invitation.pk}/decline/")

    assert response.status_code == 200
    assert response.json()["status"] == "declined"
    assert not Membership.objects.filter(user=grace).exists()
    assert client.post(f"/api/v1/invitations/{invitation.pk}/accept/").status_code == 409


def test_someone_elses_invitation_is_404(team, grace):
    invitation = InvitationFactory(team=team, invitee="grace")
    mallory = api_client_for(UserFactory(username="mallory"))

    for action in ["accept", "decline"]:
        response = mallory.post(f"/api/v1/invitations/{invitation.pk}/{action}/")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert mallory.get("/api/v1/invitations/").json()["results"] == []
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_an_expired_invitation_cannot_be_accepted(owner_api, team, grace):
    invitation = InvitationFactory(
        team=team, invitee="grace", expires_at=timezone.now() - timedelta(minutes=1)
    )
    client = api_client_for(grace)

    response = client.post(f"/api/v1/invitations/{invitation.pk}/accept/")

    assert response.status_code == 409
    assert response.json() == {"detail": "This invitation has expired.", "code": "expired"}
    assert client.get("/api/v1/invitations/").json()["results"] == []
    listed = owner_api.get(f"/api/v1/teams/{team.pk}/invitations/").json()["results"]
    assert [(i["id"], i["status"]) for i in listed] == [(invitation.pk, "expired")]
    assert not Membership.objects.filter(user=grace).exists()


def test_admins_list_and_revoke_the_teams_invitations(admin, team, grace, other_team):
    invitation = InvitationFactory(team=team, invitee="grace")
    InvitationFactory(team=other_team["team"], invitee="grace")
    client = api_client_for(admin.user)

    listed = client.get(f"/api/v1/teams/{team.pk}/invitations/").json()
    revoked = client.delete(f"/api/v1/teams/{team.pk}/invitations/{invitation.pk}/")
    again = client.delete(f"/api/v1/teams/{team.pk}/invitations/{invitation.pk}/")
    accept = api_client_for(grace).post(f"/api/v1/invitations/{invitation.pk}/accept/")

    assert [i["id"] for i in listed["results"]] == [invitation.pk]
    assert revoked.status_code == 204
    assert again.status_code == 409
    assert (accept.status_code, accept.json()["detail"]) == (409, "This invitation was revoked.")
    after = client.get(f"/api/v1/teams/{team.pk}/invitations/").json()["results"]
    assert after[0]["status"] == "revoked"
    assert not Membership.objects.filter(user=grace).exists()


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_cannot_list_or_revoke(team, role):
    invitation = InvitationFactory(team=team, invitee="grace")
    client = api_client_for(MembershipFactory(team=team, role=role).user)

    assert client.get(f"/api/v1/teams/{team.pk}/invitations/").status_code == 403
    assert client.delete(f"/api/v1/teams/{team.pk}/invitations/{invitation.pk}/").status_code == 403
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.PENDING


def test_the_accept_url_opens_the_invitation_for_the_invitee(owner_api, team, grace):
    accept_url = invite(owner_api, team, "grace").json()["accept_url"]
    path = accept_url.removeprefix("http://testserver")

    assert team.name in web_client_for(grace).get(path).content.decode()
    assert web_client_for(UserFactory()).get(path).status_code == 404
