"""Delivery that never silently loses a message: unknown recipients, failed starts, hop limits,
and delegation results that come back whatever the child's model does."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.agentapi import services as agent_api
from apps.agentapi.context import AgentContext
from apps.agents.models import Harness
from apps.core.errors import ServiceError
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.runs.prompts import prompt_from_deliveries
from apps.runs.routing import deliveries_dispatch
from apps.threads.deliveries import RunSlot, deliveries_claim, deliveries_take, delivery_release
from apps.threads.models import Delivery, DeliveryState, Message
from apps.threads.services import message_post
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def running(agent, thread, hop: int = 0) -> AgentContext:
    run = Run.objects.create(
        team=agent.team, agent=agent, thread=thread, prompt="work", harness=agent.harness,
        status=RunStatus.RUNNING, hop=hop,
    )  # fmt: skip
    return AgentContext(run=Run.objects.select_related("agent", "team", "thread").get(pk=run.pk))


def test_a_message_to_an_unknown_handle_is_refused_and_nothing_is_stored(thread):
    sender = AgentFactory(team=thread.team, handle="sender")
    before = Message.objects.count()
    with pytest.raises(ServiceError) as refused:
        agent_api.send_message(running(sender, thread), to=["ghost"], body="hello?")
    assert "@ghost" in refused.value.message and refused.value.code == "unknown_recipient"
    assert Message.objects.count() == before


def test_an_agents_message_wakes_its_recipient_with_a_run(thread):
    sender = AgentFactory(team=thread.team, handle="sender")
    AgentFactory(team=thread.team, handle="helper", harness=Harness.COMMAND, command="true")
    message = agent_api.send_message(running(sender, thread), to="@helper", body="please help")
    assert message.body.startswith("@helper") and message.hop == 1
    delivery = message.deliveries.get()
    run = Run.objects.get(agent__handle="helper")
    assert delivery.run == run and run.hop == 1 and "please help" in run.prompt


def test_a_recipient_whose_start_fails_twice_ends_failed_with_the_reason(owner, thread, settings):
    settings.OZWEB_SANDBOX = "local"
    broken = AgentFactory(team=thread.team, handle="broken", harness=Harness.CLAUDE)
    broken.environment = {"PATH": "/nonexistent"}
    broken.save()
    message = message_post(actor=owner, thread=thread, body="@broken do it")
    delivery = message.deliveries.get()

    execute_run(Run.objects.get(agent=broken).pk)
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 1
    assert delivery.retry_at is not None and "retrying" in delivery.reason

    Delivery.objects.filter(pk=delivery.pk).update(retry_at=timezone.now())
    [retry] = deliveries_dispatch(agent_id=broken.pk)
    execute_run(retry.pk)
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    assert "could not start after 2 attempts" in delivery.reason
    assert Run.objects.filter(agent=broken, status=RunStatus.FAILED).count() == 2


def test_past_the_hop_limit_deliveries_wait_for_a_human(owner, thread):
    thread.team.hop_limit = 3
    thread.team.save()
    ping = AgentFactory(team=thread.team, handle="ping")
    pong = AgentFactory(team=thread.team, handle="pong")
    ctx, hop = running(ping, thread, hop=0), 0
    for turn in range(5):  # a loop: each answer is one more agent-to-agent step
        sender, recipient = (ping, pong) if turn % 2 == 0 else (pong, ping)
        ctx = running(sender, thread, hop=hop)
        message = agent_api.send_message(ctx, to=recipient.handle, body=f"turn {turn}")
        hop = message.hop
    held = Delivery.objects.filter(held=True).select_related("message")
    assert [d.message.hop for d in held] == [4, 5]
    assert all("limit of 3" in d.reason for d in held)
    assert not Run.objects.filter(deliveries__in=held).exists(), "held: no run was started"

    Run.objects.update(status=RunStatus.SUCCEEDED)  # nobody is running: release wakes ping
    released = delivery_release(actor=owner, delivery=held[0])
    assert not released.held
    assert Run.objects.filter(deliveries=released).exists()


def test_a_delegated_result_reaches_the_parent_without_the_child_calling_a_tool(thread, program):
    lead = AgentFactory(team=thread.team, handle="lead")
    quiet = program(
        """
        import json, sys
        sys.stdin.readline()
        print(json.dumps({"type": "result", "text": "forty-two"}))
        """
    )
    AgentFactory(team=thread.team, handle="quiet", harness=Harness.COMMAND, command=quiet)
    ctx = running(lead, thread)
    child = agent_api.delegate(ctx, to="quiet", goal="compute the answer").run
    assert child.parent == ctx.run and child.status == RunStatus.QUEUED

    execute_run(child.pk)

    result = Message.objects.get(data__delegation_result=child.pk)
    assert "forty-two" in result.body and result.author_agent.handle == "quiet"
    delivery = result.deliveries.get()
    assert delivery.agent == lead  # addressed to the parent: it is woken with it


def test_the_same_content_is_stored_once(owner, thread, settings):
    from apps.artifacts.services import artifact_put

    first = artifact_put(team=thread.team, name="a.txt", content="same bytes", thread=thread)
    second = artifact_put(team=thread.team, name="b.txt", content="same bytes", thread=thread)
    assert first.content.name == second.content.name
    assert second.content.read() == b"same bytes"


def test_a_message_to_a_running_agent_is_handed_to_its_executor_and_claimed_once(thread):
    """The sender hands the committed delivery to the recipient's executor in memory; the
    executor claims it by id, and a concurrent look-up (or a second claim) cannot take it
    again."""
    from apps.runs.wakeup import Subscription

    sender = AgentFactory(team=thread.team, handle="sender")
    helper = AgentFactory(team=thread.team, handle="helper")
    helper_run = running(helper, thread).run
    handed: list = []
    with Subscription(helper_run.pk, handed.extend):
        agent_api.send_message(running(sender, thread), to="@helper", body="take this")

    [delivery] = handed
    assert delivery.state == DeliveryState.PENDING and delivery.agent_id == helper.pk
    assert "take this" in prompt_from_deliveries(handed)  # no query needed
    assert deliveries_claim(slot=RunSlot.of(helper_run), deliveries=handed) == [delivery]
    assert deliveries_claim(slot=RunSlot.of(helper_run), deliveries=handed) == []
    assert deliveries_take(slot=RunSlot.of(helper_run)) == []
    stored = Delivery.objects.get(pk=delivery.pk)
    assert stored.state == DeliveryState.DELIVERED and stored.run_id == helper_run.pk


def test_a_run_claims_only_its_own_agents_deliveries_in_its_thread(thread):
    from apps.runs.wakeup import Subscription

    sender = AgentFactory(team=thread.team, handle="sender")
    helper = AgentFactory(team=thread.team, handle="helper")
    bystander_run = running(AgentFactory(team=thread.team, handle="bystander"), thread).run
    handed: list = []
    with Subscription(running(helper, thread).run.pk, handed.extend):
        agent_api.send_message(running(sender, thread), to="@helper", body="for helper")

    assert deliveries_claim(slot=RunSlot.of(bystander_run), deliveries=handed) == []
    assert Delivery.objects.get(pk=handed[0].pk).state == DeliveryState.PENDING
