"""Model providers over the REST API: the key is write-only and encrypted; admins write."""

from __future__ import annotations

import pytest

from apps.core import secretbox
from apps.providers.models import Provider
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

KEY = "sk-ant-real-provider-key-123"


def create(api, team, **fields):
    body = {
        "name": "anthropic",
        "kind": "anthropic",
        "base_url": "https://api.anthropic.com/",
        "api_key": KEY,
        **fields,
    }
    return api.post(f"/api/v1/teams/{team.pk}/providers/", body, format="json")


def test_create_answers_201_without_the_key_and_stores_it_encrypted(api, team):
    response = create(api, team, prices={"claude-x": {"input": 3, "output": 15}})

    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "name", "kind", "base_url", "created_at"} <= set(body)
    assert body["base_url"] == "https://api.anthropic.com"
    assert body["prices"] == {"claude-x": {"input": 3.0, "output": 15.0}}
    assert KEY not in response.content.decode()
    provider = Provider.objects.get(pk=body["id"])
    assert KEY not in provider.api_key_ciphertext
    assert secretbox.decrypt(provider.api_key_ciphertext) == KEY
    for path in (f"/api/v1/teams/{team.pk}/providers/", f"/api/v1/providers/{provider.pk}/"):
        assert KEY not in api.get(path).content.decode()


def test_an_unknown_kind_is_400_naming_the_kinds(api, team):
    response = create(api, team, kind="mistral")

    assert response.status_code == 400
    assert response.json()["field"] == "kind"
    assert "anthropic, openai, gemini" in response.json()["detail"]
    assert not Provider.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"base_url": "ftp://example.com"},
        {"base_url": "https://user:pw@example.com"},
        {"api_key": ""},
        {"prices": {"m": {"input": "lots"}}},
        {"prices": {"m": {"inputs": 1}}},
    ],
)
def test_bad_fields_are_400(api, team, fields):
    assert create(api, team, **fields).status_code == 400


def test_patch_replaces_the_key_and_delete_removes_it(api, team):
    provider_id = create(api, team).json()["id"]

    response = api.patch(
        f"/api/v1/providers/{provider_id}/", {"api_key": "sk-new", "name": "main"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "main" and "api_key" not in response.json()
    provider = Provider.objects.get(pk=provider_id)
    assert secretbox.decrypt(provider.api_key_ciphertext) == "sk-new"

    assert api.delete(f"/api/v1/providers/{provider_id}/").status_code == 204
    assert not Provider.objects.filter(pk=provider_id).exists()


def test_members_read_but_only_admins_write(api, team, member):
    provider_id = create(api, team).json()["id"]
    as_member = api_client_for(member.user)

    assert as_member.get(f"/api/v1/teams/{team.pk}/providers/").json()["count"] == 1
    assert create(as_member, team, name="other").status_code == 403
    assert (
        as_member.patch(
            f"/api/v1/providers/{provider_id}/", {"name": "x"}, format="json"
        ).status_code
        == 403
    )
    assert as_member.delete(f"/api/v1/providers/{provider_id}/").status_code == 403


def test_another_teams_provider_is_404(api, team, other_team):
    other = api_client_for(other_team["owner"].user)
    provider_id = create(other, other_team["team"]).json()["id"]

    assert api.get(f"/api/v1/providers/{provider_id}/").status_code == 404
    assert (
        api.patch(f"/api/v1/providers/{provider_id}/", {"name": "x"}, format="json").status_code
        == 404
    )
    assert api.delete(f"/api/v1/providers/{provider_id}/").status_code == 404
    assert create(api, other_team["team"]).status_code == 404


def test_a_taken_name_is_409(api, team):
    create(api, team)
    assert create(api, team).status_code == 409


def test_an_agents_provider_and_budgets_over_the_agent_api(api, team, other_team):
    provider_id = create(api, team).json()["id"]
    theirs = create(api_client_for(other_team["owner"].user), other_team["team"]).json()["id"]
    body = {"handle": "lead", "harness": "claude", "provider": provider_id,
            "budget_run_tokens": 1000, "budget_run_usd": 0.5}  # fmt: skip

    created = api.post(f"/api/v1/teams/{team.pk}/agents/", body, format="json")

    assert created.status_code == 201, created.content
    agent = created.json()
    assert (agent["provider"], agent["budget_run_tokens"]) == (provider_id, 1000)
    assert agent["budget_run_usd"] == "0.5000" and agent["budget_day_usd"] is None
    path = f"/api/v1/agents/{agent['id']}/"
    patched = api.patch(path, {"budget_day_usd": 2, "provider": None}, format="json").json()
    assert (patched["provider"], patched["budget_day_usd"]) == (None, "2.0000")
    assert api.patch(path, {"provider": theirs}, format="json").status_code == 400
    bad = {"handle": "x", "harness": "claude", "provider": theirs}
    assert api.post(f"/api/v1/teams/{team.pk}/agents/", bad, format="json").status_code == 400
    assert not team.agents.filter(handle="x").exists()  # nothing half-made

    team_body = api.patch(
        f"/api/v1/teams/{team.pk}/", {"budget_month_usd": 100}, format="json"
    ).json()
    assert team_body["budget_month_usd"] == "100.0000" and team_body["budget_day_usd"] is None
