import json

import pytest

from apps.agents.models import Agent, AgentSecret
from apps.agents.services import agent_secret_values
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

SECRET = "sk-live-very-secret-value"


def create(client, team, **fields):
    payload = {"handle": "builder", **fields}
    return client.post(f"/api/v1/teams/{team.pk}/agents/", payload, format="json")


def test_create_an_agent_with_secrets_that_never_come_back(owner_api, team):
    response = create(
        owner_api,
        team,
        display_name="Builder",
        harness="codex",
        environment={"LOG_LEVEL": "debug"},
        secrets={"OPENAI_API_KEY": SECRET},
        setup_commands=["pip install -e ."],
    )

    assert response.status_code == 201
    body = response.json()
    assert body["handle"] == "builder"
    assert body["harness"] == "codex"
    assert body["environment"] == {"LOG_LEVEL": "debug"}
    assert body["secret_names"] == ["OPENAI_API_KEY"]
    assert "secrets" not in body
    assert SECRET not in response.content.decode()
    agent = Agent.objects.get(pk=body["id"])
    assert SECRET not in AgentSecret.objects.get(agent=agent).ciphertext
    assert agent_secret_values(agent=agent) == {"OPENAI_API_KEY": SECRET}


def test_secret_values_appear_in_no_read(owner_api, team):
    agent_id = create(owner_api, team, secrets={"TOKEN": SECRET}).json()["id"]

    for path in [f"/api/v1/agents/{agent_id}/", f"/api/v1/teams/{team.pk}/agents/"]:
        response = owner_api.get(path)
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
        assert "TOKEN" in json.dumps(response.json())


def test_patch_replaces_one_secret_and_null_removes_another(owner_api, team):
    agent_id = create(owner_api, team, secrets={"A": "1", "B": "2"}).json()["id"]

    response = owner_api.patch(
        f"/api/v1/agents/{agent_id}/", {"secrets": {"A": "new", "B": None}}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["secret_names"] == ["A"]
    assert "new" not in response.content.decode()
    assert agent_secret_values(agent=Agent.objects.get(pk=agent_id)) == {"A": "new"}


def test_patch_updates_fields(owner_api, agent):
    response = owner_api.patch(
        f"/api/v1/agents/{agent.pk}/", {"model": "opus", "max_concurrent_runs": 3}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["model"], response.json()["max_concurrent_runs"]) == ("opus", 3)


def test_delete_archives_the_agent(owner_api, owner, agent):
    response = owner_api.delete(f"/api/v1/agents/{agent.pk}/")

    assert response.status_code == 204
    agent.refresh_from_db()
    assert agent.is_archived and agent.archived_by == owner.user


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"handle": "Bad Handle"}, "handle", "lowercase"),
        ({"harness": "emacs"}, "harness", ""),
        ({"harness": "command"}, "command", "needs the program"),
        ({"environment": {"1BAD": "x"}}, "environment", "not a valid environment variable"),
        ({"secrets": {"has space": "x"}}, "secrets", "not a valid environment variable"),
        ({"run_timeout_seconds": 1}, "run_timeout_seconds", ""),
    ],
)
def test_create_refuses_bad_input(owner_api, team, fields, field, message):
    response = create(owner_api, team, **fields)

    assert response.status_code == 400
    body = response.json()
    errors = body.get("errors", body)
    assert field in errors
    assert message in json.dumps(errors, ensure_ascii=False)
    assert not Agent.objects.exists()


def test_a_handle_is_taken_in_my_team_but_free_in_another(owner_api, team, agent, other_team):
    taken = create(owner_api, team, handle="coder")
    free = create(owner_api, team, handle="spy")  # the other team's agent is called @spy

    assert taken.status_code == 409
    assert "already taken" in taken.json()["detail"]
    assert free.status_code == 201


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_members_and_viewers_cannot_manage_agents(request, role_fixture, team, agent):
    client = api_client_for(request.getfixturevalue(role_fixture).user)

    assert create(client, team).status_code == 403
    patched = client.patch(f"/api/v1/agents/{agent.pk}/", {"model": "x"}, format="json")
    assert patched.status_code == 403
    assert client.delete(f"/api/v1/agents/{agent.pk}/").status_code == 403
    assert client.get(f"/api/v1/agents/{agent.pk}/").status_code == 200
    assert list(Agent.objects.values_list("handle", "model")) == [("coder", "")]


# -- deleting archives -----------------------------------------------------------------------


def test_an_archived_agent_still_answers_marked_archived_and_leaves_the_list(
    owner_api, team, agent
):
    owner_api.delete(f"/api/v1/agents/{agent.pk}/")

    detail = owner_api.get(f"/api/v1/agents/{agent.pk}/")
    listed = owner_api.get(f"/api/v1/teams/{team.pk}/agents/").json()
    archived = owner_api.get(f"/api/v1/teams/{team.pk}/agents/?archived=true").json()

    assert detail.status_code == 200
    assert detail.json()["archived"] is True and detail.json()["archived_at"]
    assert detail.json()["handle"] == "coder"  # the fields it had, and more
    assert listed["results"] == []
    assert [a["id"] for a in archived["results"]] == [agent.pk]
    assert owner_api.get(f"/api/v1/teams/{team.pk}/agents/?archived=maybe").status_code == 400
    assert owner_api.delete(f"/api/v1/agents/{agent.pk}/").status_code == 204  # no-op


def test_an_archived_agent_is_not_edited_started_or_messaged(owner_api, team, agent, thread):
    owner_api.delete(f"/api/v1/agents/{agent.pk}/")

    patched = owner_api.patch(f"/api/v1/agents/{agent.pk}/", {"model": "x"}, format="json")
    started = owner_api.post(
        "/api/v1/runs/", {"agent": agent.pk, "prompt": "go", "thread": thread.pk}, format="json"
    )
    mentioned = owner_api.post(
        f"/api/v1/threads/{thread.pk}/messages/", {"body": "@coder are you there?"}, format="json"
    )

    for response in (patched, started, mentioned):
        assert response.status_code == 409
        assert response.json()["code"] == "agent_archived"
    assert mentioned.json()["detail"] == "@coder is archived and takes no messages."
    assert not thread.messages.filter(body__contains="are you there").exists()


def test_an_archived_agents_direct_thread_is_history(owner_api, owner, agent):
    from apps.threads.services import message_post, thread_direct_for_agent

    direct = thread_direct_for_agent(agent=agent)
    message_post(actor=owner, thread=direct, body="before")
    owner_api.delete(f"/api/v1/agents/{agent.pk}/")

    posted = owner_api.post(
        f"/api/v1/threads/{direct.pk}/messages/", {"body": "after"}, format="json"
    )
    history = owner_api.get(f"/api/v1/threads/{direct.pk}/messages/")
    threads = owner_api.get(f"/api/v1/teams/{owner.team_id}/threads/").json()["results"]

    assert posted.status_code == 409
    assert [m["body"] for m in history.json()["results"] if m["kind"] == "text"] == ["before"]
    assert direct.pk not in [t["id"] for t in threads]


def test_a_new_agent_takes_the_handle_of_an_archived_one(owner_api, team, agent):
    owner_api.delete(f"/api/v1/agents/{agent.pk}/")

    response = create(owner_api, team, handle="coder")

    assert response.status_code == 201 and response.json()["id"] != agent.pk
    listed = owner_api.get(f"/api/v1/teams/{team.pk}/agents/").json()["results"]
    assert [(a["handle"], a["archived"]) for a in listed] == [("coder", False)]


def test_another_teams_agent_is_not_found_and_stays(owner_api, other_team):
    their = other_team["agent"]

    response = owner_api.delete(f"/api/v1/agents/{their.pk}/")

    assert response.status_code == 404
    their.refresh_from_db()
    assert not their.is_archived
