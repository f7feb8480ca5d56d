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
