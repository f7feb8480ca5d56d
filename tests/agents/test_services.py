import pytest

from apps.agents import selectors, services
from apps.agents.models import Agent, AgentSecret, AgentStatus, Harness
from apps.core.errors import Conflict, NotFound, PermissionDenied, ServiceError
from apps.runs.archiving import agent_archive
from apps.teams.models import Role
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_agent_create_normalises_the_handle_and_defaults_the_display_name(owner):
    agent = services.agent_create(actor=owner, handle=" @Coder ", harness=Harness.CODEX)

    assert agent.handle == "coder"
    assert agent.display_name == "coder"
    assert agent.harness == Harness.CODEX
    assert agent.created_by == owner.user


@pytest.mark.parametrize("handle", ["", "-lead", "has space", "x" * 41, "émile", "a/b"])
def test_agent_create_refuses_bad_handles(owner, handle):
    with pytest.raises(ServiceError) as caught:
        services.agent_create(actor=owner, handle=handle)

    assert caught.value.field == "handle"
    assert not Agent.objects.exists()


def test_a_handle_is_unique_in_a_team_but_reusable_in_another(owner, other_team):
    services.agent_create(actor=owner, handle="spy")

    with pytest.raises(ServiceError, match="already taken"):
        services.agent_create(actor=owner, handle="SPY")

    assert Agent.objects.filter(handle="spy").count() == 2  # ours and the other team's


def test_agent_create_refuses_an_unknown_harness(owner):
    with pytest.raises(ServiceError, match="Unknown harness") as caught:
        services.agent_create(actor=owner, handle="bot", harness="emacs")

    assert caught.value.field == "harness"


def test_a_command_agent_needs_a_command_that_parses(owner):
    with pytest.raises(ServiceError, match="needs the program") as missing:
        services.agent_create(actor=owner, handle="bot", harness=Harness.COMMAND, command="  ")
    with pytest.raises(ServiceError, match="does not parse") as unparsable:
        services.agent_create(
            actor=owner, handle="bot", harness=Harness.COMMAND, command="run 'unclosed"
        )

    assert missing.value.field == unparsable.value.field == "command"
    agent = services.agent_create(
        actor=owner, handle="bot", harness=Harness.COMMAND, command="python -m bot"
    )
    assert agent.command == "python -m bot"


@pytest.mark.parametrize("name", ["1ABC", "WITH-DASH", "has space", ""])
def test_environment_names_must_be_valid(owner, name):
    with pytest.raises(ServiceError, match="not a valid environment variable name"):
        services.agent_create(actor=owner, handle="bot", environment={name: "x"})


def test_environment_keeps_values_and_drops_nulls(owner):
    agent = services.agent_create(
        actor=owner, handle="bot", environment={"LOG_LEVEL": "debug", "UNSET": None}
    )

    assert agent.environment == {"LOG_LEVEL": "debug"}


def test_agent_create_refuses_unknown_fields(owner):
    with pytest.raises(ServiceError, match="Unknown agent fields: status"):
        services.agent_create(actor=owner, handle="bot", status="running")


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_only_admins_and_owners_manage_agents(request, role_fixture, agent):
    actor = request.getfixturevalue(role_fixture)

    with pytest.raises(PermissionDenied):
        services.agent_create(actor=actor, handle="bot")
    with pytest.raises(PermissionDenied):
        services.agent_update(actor=actor, agent=agent, display_name="Hacked")
    with pytest.raises(PermissionDenied):
        agent_archive(actor=actor, agent=agent)

    agent.refresh_from_db()
    assert agent.display_name == "Coder"
    assert not agent.is_archived


def test_admin_manages_agents(admin):
    agent = services.agent_create(actor=admin, handle="bot")

    services.agent_update(actor=admin, agent=agent, display_name="Robot", model="sonnet")
    agent.refresh_from_db()
    assert (agent.display_name, agent.model) == ("Robot", "sonnet")

    agent_archive(actor=admin, agent=agent)
    agent.refresh_from_db()
    assert agent.is_archived and agent.archived_by == admin.user


def test_agent_update_to_a_taken_handle_is_refused(owner, agent):
    other = AgentFactory(team=owner.team, handle="reviewer")

    with pytest.raises(ServiceError, match="already taken"):
        services.agent_update(actor=owner, agent=other, handle="coder")


def test_agent_update_to_command_harness_without_a_command_is_refused(owner, agent):
    with pytest.raises(ServiceError, match="needs the program"):
        services.agent_update(actor=owner, agent=agent, harness=Harness.COMMAND)

    agent.refresh_from_db()
    assert agent.harness == Harness.CLAUDE


def test_services_refuse_another_teams_agent(owner, other_team):
    with pytest.raises(PermissionDenied):
        services.agent_update(actor=owner, agent=other_team["agent"], display_name="x")
    with pytest.raises(PermissionDenied):
        agent_archive(actor=owner, agent=other_team["agent"])
    assert not Agent.objects.archived().exists()


def test_access_agent_hides_other_teams_and_checks_the_role(owner, viewer, agent, other_team):
    assert selectors.access_agent(user=owner.user, agent_id=agent.pk) == (owner, agent)
    with pytest.raises(NotFound):
        selectors.access_agent(user=owner.user, agent_id=other_team["agent"].pk)
    with pytest.raises(PermissionDenied):
        selectors.access_agent(user=viewer.user, agent_id=agent.pk, role=Role.ADMIN)


def test_secrets_are_encrypted_at_rest_and_decrypt_for_the_sandbox(owner):
    agent = services.agent_create(
        actor=owner, handle="bot", secrets={"API_KEY": "sk-live-123", "TOKEN": "t0k"}
    )

    stored = {s.name: s.ciphertext for s in AgentSecret.objects.filter(agent=agent)}
    assert set(stored) == {"API_KEY", "TOKEN"}
    assert "sk-live-123" not in stored["API_KEY"]
    assert services.agent_secret_values(agent=agent) == {"API_KEY": "sk-live-123", "TOKEN": "t0k"}


def test_secrets_update_replaces_and_null_or_empty_removes(owner):
    agent = services.agent_create(actor=owner, handle="bot", secrets={"A": "1", "B": "2", "C": "3"})

    services.agent_update(actor=owner, agent=agent, secrets={"A": "new", "B": None, "C": ""})

    assert services.agent_secret_values(agent=agent) == {"A": "new"}


def test_secret_names_follow_environment_rules(owner):
    with pytest.raises(ServiceError) as caught:
        services.agent_create(actor=owner, handle="bot", secrets={"bad name": "x"})

    assert caught.value.field == "secrets"
    assert not Agent.objects.exists()


def test_agent_set_status_moves_only_on_change(agent):
    assert services.agent_set_status(agent=agent, status=AgentStatus.RUNNING) is True
    assert services.agent_set_status(agent=agent, status=AgentStatus.RUNNING) is False

    agent.refresh_from_db()
    assert agent.status == AgentStatus.RUNNING


# -- archiving (deleting) an agent -----------------------------------------------------------


def test_an_archived_agent_leaves_the_lists_loses_its_secrets_and_keeps_its_row(owner, agent):
    services.agent_update(actor=owner, agent=agent, secrets={"API_KEY": "sk-1"})

    agent_archive(actor=owner, agent=agent)

    assert list(selectors.agent_list(team=owner.team)) == []
    assert list(selectors.agent_list(team=owner.team, archived=True)) == [agent]
    assert selectors.access_agent(user=owner.user, agent_id=agent.pk)[1] == agent
    assert not AgentSecret.objects.filter(agent=agent).exists()


def test_an_archived_agent_is_not_edited(owner, agent):
    agent_archive(actor=owner, agent=agent)

    with pytest.raises(Conflict, match="archived"):
        services.agent_update(actor=owner, agent=agent, display_name="Back")


def test_an_archived_agents_handle_is_free_for_a_new_agent(owner, agent):
    from apps.threads.services import thread_direct_for_agent

    old_direct = thread_direct_for_agent(agent=agent)
    agent_archive(actor=owner, agent=agent)

    new = services.agent_create(actor=owner, handle="coder")

    assert new.pk != agent.pk
    assert list(selectors.agent_list(team=owner.team)) == [new]
    with pytest.raises(ServiceError, match="already taken"):
        services.agent_create(actor=owner, handle="coder")
    new_direct = thread_direct_for_agent(agent=new)  # same name, its own thread
    assert new_direct.pk != old_direct.pk and new_direct.name == old_direct.name


def test_an_agents_history_cannot_be_deleted_with_it(owner, agent, thread):
    from django.db.models import ProtectedError

    from apps.runs.models import Run
    from apps.threads.services import thread_direct_for_agent

    Run.objects.create(team=owner.team, agent=agent, thread=thread, prompt="x", harness="claude")
    thread_direct_for_agent(agent=agent)

    with pytest.raises(ProtectedError):
        agent.delete()
