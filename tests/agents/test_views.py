import pytest

from apps.agents.models import Agent
from apps.agents.services import agent_secret_values
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db

FORM = {
    "handle": "builder",
    "display_name": "Builder",
    "harness": "claude",
    "model": "",
    "instructions": "Build things.",
    "command": "",
    "image": "ozweb-harness:local",
    "setup_commands": "pip install -e .\n\nmake deps\n",
    "environment": "LOG_LEVEL=debug\n# a comment\nEMPTY=\n",
    "secrets": "API_KEY=sk-from-the-form\n",
    "run_timeout_seconds": "1800",
    "max_concurrent_runs": "2",
}


def test_agent_form_creates_an_agent_parsing_env_and_secrets(web, team):
    response = web.post(f"/teams/{team.pk}/agents/new/", FORM)

    agent = Agent.objects.get(team=team, handle="builder")
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.pk}/"
    assert agent.environment == {"LOG_LEVEL": "debug"}
    assert agent.setup_commands == ["pip install -e .", "make deps"]
    assert agent.max_concurrent_runs == 2
    assert agent_secret_values(agent=agent) == {"API_KEY": "sk-from-the-form"}


def test_agent_pages_show_secret_names_never_values(web, team):
    web.post(f"/teams/{team.pk}/agents/new/", FORM)
    agent = Agent.objects.get(handle="builder")

    detail = web.get(f"/agents/{agent.pk}/").content.decode()
    edit = web.get(f"/agents/{agent.pk}/edit/").content.decode()

    assert "API_KEY=••••••" in detail
    assert "API_KEY" in edit
    assert "sk-from-the-form" not in detail + edit


def test_agent_form_reports_a_bad_line(web, team):
    response = web.post(f"/teams/{team.pk}/agents/new/", {**FORM, "environment": "no equals"})

    assert response.status_code == 200
    assert "Line 1 is not NAME=value." in response.content.decode()
    assert not Agent.objects.exists()


def test_agent_form_puts_service_errors_on_the_field(web, team, agent):
    response = web.post(f"/teams/{team.pk}/agents/new/", {**FORM, "handle": "coder"})

    assert "The handle @coder is already taken in this team." in response.content.decode()


def test_agent_edit_updates_and_removes_a_secret(web, team):
    web.post(f"/teams/{team.pk}/agents/new/", FORM)
    agent = Agent.objects.get(handle="builder")

    response = web.post(
        f"/agents/{agent.pk}/edit/", {**FORM, "model": "opus", "secrets": "API_KEY=\n"}
    )

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.model == "opus"
    assert agent_secret_values(agent=agent) == {}


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_only_admins_reach_the_agent_forms(request, role_fixture, team, agent):
    client = web_client_for(request.getfixturevalue(role_fixture).user)

    assert client.get(f"/teams/{team.pk}/agents/new/").status_code == 403
    assert client.get(f"/agents/{agent.pk}/edit/").status_code == 403
    assert client.get(f"/agents/{agent.pk}/").status_code == 200


def test_agent_delete(web, agent):
    response = web.post(f"/agents/{agent.pk}/delete/")

    assert response.status_code == 302
    assert not Agent.objects.filter(pk=agent.pk).exists()


def test_a_viewer_cannot_delete_an_agent(viewer, agent):
    web_client_for(viewer.user).post(f"/agents/{agent.pk}/delete/")

    assert Agent.objects.filter(pk=agent.pk).exists()
