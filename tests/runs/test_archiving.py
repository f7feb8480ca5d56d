"""Deleting an agent archives it: its live runs are stopped first, its history stays.

The live run is a real process in the local sandbox (a command agent running `sleep`)."""

from __future__ import annotations

import os

import pytest

from apps.agents.models import Agent
from apps.core.errors import Conflict
from apps.runs.archiving import agent_archive
from apps.runs.creation import NewRun, run_create
from apps.runs.models import Run, RunStatus
from apps.runs.routing import deliveries_dispatch
from apps.threads.models import Delivery, DeliveryState, Message
from apps.threads.services import message_post
from tests.artifacts.conftest import make_held_delivery
from tests.conftest import api_client_for, web_client_for
from tests.runs.conftest import run_status, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_sandbox")]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_deleting_an_agent_with_a_live_run_stops_it_and_keeps_its_history(
    owner, thread, command_agent, background
):
    agent = command_agent("sleep 60", handle="sleeper")
    run = run_create(NewRun(agent=agent, prompt="nap", thread=thread))
    background.execute(run.pk)
    wait_for(lambda: run_status(run.pk) == RunStatus.RUNNING, what="running")
    pid = int(Run.objects.get(pk=run.pk).container_id.removeprefix("local-"))
    assert process_alive(pid)
    before = set(Message.objects.filter(thread=thread).values_list("pk", flat=True))

    response = api_client_for(owner.user).delete(f"/api/v1/agents/{agent.pk}/")

    assert response.status_code == 204
    wait_for(lambda: run_status(run.pk) == RunStatus.CANCELLED, timeout=5, what="cancelled")
    background.join()
    assert not process_alive(pid)
    kept = set(Message.objects.filter(thread=thread).values_list("pk", flat=True))
    assert before <= kept  # nothing cascaded away; the stop is one more status line
    assert Message.objects.filter(thread=thread, run=run, body__contains="was stopped").exists()
    agent.refresh_from_db()
    assert agent.is_archived and Run.objects.filter(pk=run.pk, agent=agent).exists()

    page = web_client_for(owner.user).get(f"/runs/{run.pk}/")
    assert page.status_code == 200
    assert "Cancelled" in page.content.decode()
    assert "Reply to @sleeper" not in page.content.decode()  # its runs are history


def test_a_queued_run_is_cancelled_and_waiting_messages_fail_visibly(owner, thread, command_agent):
    agent = command_agent("true", handle="bot")
    message_post(actor=owner, thread=thread, body="@bot first job")
    queued = Run.objects.get(agent=agent)
    held = make_held_delivery(thread=thread, agent=agent)

    stopped = agent_archive(actor=owner, agent=agent)

    assert [r.pk for r in stopped] == [queued.pk]
    assert run_status(queued.pk) == RunStatus.CANCELLED
    deliveries = Delivery.objects.filter(agent=agent)
    assert {d.state for d in deliveries} == {DeliveryState.FAILED}
    held.refresh_from_db()
    assert not held.held and "archived" in held.reason


def test_an_archived_agent_is_never_dispatched_nor_started(owner, thread, command_agent):
    agent = command_agent("true", handle="bot")
    agent_archive(actor=owner, agent=agent)
    late = make_held_delivery(thread=thread, agent=agent)  # addressed by id, as a report is
    Delivery.objects.filter(pk=late.pk).update(held=False)

    assert deliveries_dispatch(agent_id=agent.pk) == []

    late.refresh_from_db()
    assert late.state == DeliveryState.FAILED and "archived" in late.reason
    with pytest.raises(Conflict, match="archived"):
        run_create(NewRun(agent=agent, prompt="go", thread=thread))
    assert not Run.objects.filter(agent=agent).exists()


def test_archiving_twice_stops_nothing_more(owner, command_agent):
    agent = command_agent("true")

    assert agent_archive(actor=owner, agent=agent) == []
    first = Agent.objects.get(pk=agent.pk).archived_at
    assert agent_archive(actor=owner, agent=agent) == []
    assert Agent.objects.get(pk=agent.pk).archived_at == first
