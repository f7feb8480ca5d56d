"""Run tokens: valid while their run is active, checked against the database on every call,
with the run's agent, team and thread reused for a few seconds as instances of each caller's
own."""

from __future__ import annotations

import pytest

from apps.runs.creation import NewRun, run_create
from apps.runs.models import RunStatus
from apps.runs.tokens import run_for_token, token_issue
from apps.runs.transitions import run_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(agent, thread):
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    return run, token_issue(run=run)


def test_a_token_names_its_run_until_the_run_ends(issued):
    run, token = issued
    assert run_for_token(token).pk == run.pk

    run_transition(run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.CANCELLED)

    assert run_for_token(token) is None
    assert run_for_token("ozr_not-a-token") is None and run_for_token("") is None


def test_a_reused_run_is_one_query_and_each_caller_gets_its_own(issued, django_assert_num_queries):
    run, token = issued
    first = run_for_token(token)

    with django_assert_num_queries(2):  # each call's token check; the rest is reused
        second = run_for_token(token)
        third = run_for_token(token)
        names = (second.agent.handle, second.team.name, second.thread.label)
    second.agent.handle = "changed"
    second.usage["tokens"] = 1

    assert names == (run.agent.handle, run.team.name, run.thread.label)
    assert third.agent.handle == first.agent.handle == run.agent.handle
    assert third.usage == first.usage == {}
    assert third.agent is not second.agent and third.thread is not second.thread


def test_a_reused_runs_instances_are_as_the_database_loads_them(issued):
    from apps.agents.models import Agent
    from apps.runs.models import Run
    from apps.teams.models import Team
    from apps.threads.models import Thread

    run, token = issued
    run_for_token(token)
    reused = run_for_token(token)  # from the loaded values
    for mine, loaded in [
        (reused, Run.objects.get(pk=run.pk)),
        (reused.agent, Agent.objects.get(pk=run.agent_id)),
        (reused.team, Team.objects.get(pk=run.team_id)),
        (reused.thread, Thread.objects.get(pk=run.thread_id)),
    ]:
        assert type(mine) is type(loaded) and mine == loaded
        assert (mine._state.adding, mine._state.db) == (False, loaded._state.db)
        fields = [f.attname for f in type(loaded)._meta.concrete_fields]
        assert [getattr(mine, f) for f in fields] == [getattr(loaded, f) for f in fields]
    # They behave as loaded ones: saved as updates, refreshed, related objects as set.
    reused.agent.display_name = "Renamed"
    reused.agent.save(update_fields=["display_name"])
    assert Agent.objects.get(pk=run.agent_id).display_name == "Renamed"
    reused.refresh_from_db()
    assert reused.agent.pk == run.agent_id and reused.thread.pk == run.thread_id
