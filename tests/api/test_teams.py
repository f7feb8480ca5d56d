import pytest

from apps.teams.models import Membership, Role
from apps.threads.models import Thread
from tests.conftest import api_client_for
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db


def test_list_teams_shows_mine_with_my_role(owner_api, owner, other_team):
    MembershipFactory(team=TeamFactory(name="Another"), user=owner.user, role=Role.VIEWER)

    response = owner_api.get("/api/v1/teams/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert {(t["name"], t["role"]) for t in body["results"]} == {
        (owner.team.name, "owner"),
        ("Another", "viewer"),
    }


def test_create_team_makes_me_owner_with_general(owner_api, owner):
    response = owner_api.post("/api/v1/teams/", {"name": "Research"}, format="json")

    assert response.status_code == 201
    created = response.json()
    assert (created["name"], created["slug"], created["role"]) == ("Research", "research", "owner")
    assert Thread.objects.filter(team_id=created["id"], name="general").exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 81}, "name")],
)
def test_create_team_refuses_bad_names(owner_api, payload, field):
    response = owner_api.post("/api/v1/teams/", payload, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == field


def test_create_team_refuses_a_taken_name_with_a_clear_message(owner_api, owner):
    response = owner_api.post("/api/v1/teams/", {"name": owner.team.name.upper()}, format="json")

    assert response.status_code == 409
    assert response.json()["field"] == "name"
    assert "already exists" in response.json()["detail"]


def test_team_detail(owner_api, team):
    response = owner_api.get(f"/api/v1/teams/{team.pk}/")

    assert response.status_code == 200
    assert response.json()["id"] == team.pk
    assert response.json()["role"] == "owner"


def test_members_list(owner_api, team, owner, member):
    response = owner_api.get(f"/api/v1/teams/{team.pk}/members/")

    assert response.status_code == 200
    assert {(m["username"], m["role"]) for m in response.json()["results"]} == {
        (owner.user.username, "owner"),
        (member.user.username, "member"),
    }


def test_change_a_role(owner_api, team, member):
    response = owner_api.patch(
        f"/api/v1/teams/{team.pk}/members/{member.pk}/", {"role": "admin"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    member.refresh_from_db()
    assert member.role == Role.ADMIN


def test_an_admin_cannot_grant_owner(admin, team, member):
    response = api_client_for(admin.user).patch(
        f"/api/v1/teams/{team.pk}/members/{member.pk}/", {"role": "owner"}, format="json"
    )

    assert response.status_code == 403
    member.refresh_from_db()
    assert member.role == Role.MEMBER


def test_the_last_owner_cannot_demote_themselves(owner_api, team, owner):
    response = owner_api.patch(
        f"/api/v1/teams/{team.pk}/members/{owner.pk}/", {"role": "member"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["detail"] == "A team always keeps at least one owner."


def test_remove_a_member(owner_api, team, member):
    response = owner_api.delete(f"/api/v1/teams/{team.pk}/members/{member.pk}/")

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_the_last_owner_cannot_leave(owner_api, team, owner):
    response = owner_api.delete(f"/api/v1/teams/{team.pk}/members/{owner.pk}/")

    assert response.status_code == 409
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_lists_paginate(owner_api, owner):
    for n in range(3):
        MembershipFactory(user=owner.user, team=TeamFactory(name=f"Extra {n}"))

    response = owner_api.get("/api/v1/teams/?limit=2")

    assert response.json()["count"] == 4
    assert len(response.json()["results"]) == 2
    assert "offset=2" in response.json()["next"]


def test_admins_set_the_hop_limit(team, admin):
    response = api_client_for(admin.user).patch(
        f"/api/v1/teams/{team.pk}/", {"hop_limit": 3}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["hop_limit"], response.json()["role"]) == (3, "admin")
    team.refresh_from_db()
    assert team.hop_limit == 3


@pytest.mark.parametrize("hop_limit", [0, 1001, "many", None])
def test_the_hop_limit_is_between_1_and_1000(owner_api, team, hop_limit):
    response = owner_api.patch(f"/api/v1/teams/{team.pk}/", {"hop_limit": hop_limit}, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "hop_limit"


def test_members_cannot_set_the_hop_limit(team, member):
    response = api_client_for(member.user).patch(
        f"/api/v1/teams/{team.pk}/", {"hop_limit": 3}, format="json"
    )

    assert response.status_code == 403
    team.refresh_from_db()
    assert team.hop_limit == 20
