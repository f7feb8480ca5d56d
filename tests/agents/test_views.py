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


def test_archiving_from_the_agent_page(web, agent):
    response = web.post(f"/agents/{agent.pk}/archive/")

    assert response.status_code == 302 and response["Location"] == f"/agents/{agent.pk}/"
    agent.refresh_from_db()
    assert agent.is_archived


def test_a_viewer_cannot_archive_an_agent(viewer, agent):
    client = web_client_for(viewer.user)

    assert client.get(f"/agents/{agent.pk}/archive/").status_code == 403
    assert client.post(f"/agents/{agent.pk}/archive/").status_code == 403
    agent.refresh_from_db()
    assert not agent.is_archived


def test_the_archive_confirmation_names_the_live_runs_it_stops(web, owner, agent, thread):
    from apps.runs.creation import NewRun, run_create
    from apps.runs.models import Run, RunStatus

    live = run_create(NewRun(agent=agent, prompt="build the thing", thread=thread))
    done = run_create(NewRun(agent=agent, prompt="old work", thread=thread))
    Run.objects.filter(pk=done.pk).update(status=RunStatus.SUCCEEDED)

    page = web.get(f"/agents/{agent.pk}/archive/").content.decode()

    assert f"run {live.pk}" in page and "build the thing" in page
    assert f"run {done.pk}" not in page
    assert "Stop 1 run and archive @coder" in page
    response = web.post(f"/agents/{agent.pk}/archive/", follow=True)
    assert "stopped 1 live run" in response.content.decode()
    assert Run.objects.get(pk=live.pk).status == RunStatus.CANCELLED


def test_an_archived_agents_page_is_its_history_and_read_only(web, owner, agent):
    from apps.runs.archiving import agent_archive
    from apps.runs.creation import NewRun, run_create
    from apps.threads.services import thread_direct_for_agent

    run = run_create(NewRun(agent=agent, prompt="old work"))
    direct = thread_direct_for_agent(agent=agent)
    agent_archive(actor=owner, agent=agent)

    page = web.get(f"/agents/{agent.pk}/").content.decode()

    assert "status-archived" in page and f"run {run.pk}" in page
    assert f"/threads/{direct.pk}/" in page
    assert "archive-agent" not in page and 'id="run-agent"' not in page
    assert web.get(f"/agents/{agent.pk}/edit/")["Location"] == f"/agents/{agent.pk}/"
    thread_page = web.get(f"/threads/{direct.pk}/").content.decode()
    assert "takes no new messages" in thread_page and 'id="composer-body"' not in thread_page


def test_the_agent_list_leaves_archived_agents_out_and_lists_them_apart(web, owner, team, agent):
    from apps.runs.archiving import agent_archive
    from tests.factories import AgentFactory

    AgentFactory(team=team, handle="keeper")
    agent_archive(actor=owner, agent=agent)

    current = web.get(f"/teams/{team.pk}/agents/").content.decode()
    archived = web.get(f"/teams/{team.pk}/agents/?archived=1").content.decode()
    dashboard = web.get(f"/teams/{team.pk}/").content.decode()

    assert "@keeper" in current and "@coder" not in current and "1 archived agent" in current
    assert "@coder" in archived and "@keeper" not in archived
    assert "@coder" not in dashboard
