"""The executor's once-a-second look (apps.runs.selectors.run_control_look): one prepared
statement that must agree with the ORM's `for_run_of` and the run's stop flag."""

from __future__ import annotations

import pytest

from apps.runs.creation import NewRun, run_create
from apps.runs.models import Run, RunStatus
from apps.runs.selectors import ControlLook, run_control_look
from apps.runs.transitions import run_request_cancel, run_transition
from apps.threads.models import Delivery, DeliveryState
from apps.threads.services import message_post
from tests.factories import ThreadFactory

pytestmark = pytest.mark.django_db


def orm_look(run: Run) -> ControlLook:
    run.refresh_from_db()
    waiting = Delivery.objects.for_run_of(
        agent_id=run.agent_id, thread_id=run.thread_id, run_id=run.pk
    ).exists()
    return ControlLook(cancel_requested=run.cancel_requested, messages_waiting=waiting)


def running(agent, thread) -> Run:
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    run_transition(run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.RUNNING)
    Delivery.objects.filter(run=run).update(state=DeliveryState.DELIVERED)
    return run


def test_the_look_agrees_with_the_orm_as_messages_arrive_are_taken_and_a_stop_is_asked(
    owner, thread, command_agent
):
    agent = command_agent("true")
    run = running(agent, thread)
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(False, False)

    message = message_post(actor=owner, thread=thread, body="@bot one more thing")
    delivery = Delivery.objects.get(message=message)
    assert delivery.state == DeliveryState.PENDING
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(False, True)

    # Owned by another run of the agent: not this run's to take.
    other = run_create(NewRun(agent=agent, prompt="elsewhere", thread=thread))
    Delivery.objects.filter(pk=delivery.pk).update(run=other)
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(False, False)

    # A delegation gets a run of its own unless it is this run's.
    Delivery.objects.filter(pk=delivery.pk).update(run=None, parent_run=other)
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(False, False)
    Delivery.objects.filter(pk=delivery.pk).update(run=run)
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(False, True)

    Delivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.DELIVERED)
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(False, False)

    run_request_cancel(actor=owner, run=run)
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(True, False)


def test_messages_in_another_thread_or_for_another_agent_do_not_count(
    owner, team, thread, command_agent
):
    run = running(command_agent("true"), thread)
    other = running(command_agent("true", handle="other"), thread)
    elsewhere = ThreadFactory(team=team, name="elsewhere")
    message_post(actor=owner, thread=elsewhere, body="@bot in another thread")
    # Every post in a thread goes to the agents running there: to @bot here too, until
    # it is made @other's alone.
    message = message_post(actor=owner, thread=thread, body="@other for other")
    Delivery.objects.filter(message=message).exclude(agent=other.agent).delete()
    assert Delivery.objects.filter(state=DeliveryState.PENDING).count() == 2
    assert run_control_look(run_id=other.pk) == orm_look(other) == ControlLook(False, True)
    assert run_control_look(run_id=run.pk) == orm_look(run) == ControlLook(False, False)


@pytest.mark.parametrize("run_id", [0, 987_654_321, 2**63, -1])
def test_no_such_run_is_none(run_id):
    assert run_control_look(run_id=run_id) is None
