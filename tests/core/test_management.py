from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.teams.models import Membership, Role, Team

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_api_user", *args, stdout=out)
    return out.getvalue().strip()


def test_create_api_user_prints_a_token_that_works():
    token = run("bot", "--team", "Robots")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/v1/teams/")
    assert response.status_code == 200
    assert [t["name"] for t in response.json()["results"]] == ["Robots"]
    assert Membership.objects.get(user__username="bot").role == Role.OWNER


def test_create_api_user_joins_an_existing_team_and_reuses_the_token(owner):
    first = run("bot", "--team", owner.team.name.upper(), "--role", "member")
    second = run("bot", "--team", owner.team.name)

    assert first == second
    assert Membership.objects.get(user__username="bot", team=owner.team).role == Role.MEMBER
    assert Team.objects.count() == 1


def test_create_api_user_refuses_an_empty_username():
    with pytest.raises(CommandError, match="cannot be empty"):
        run(" ", "--team", "Robots")
