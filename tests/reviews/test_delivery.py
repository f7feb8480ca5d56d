"""A review reaches the change's agent as a message with a delivery, like any other: a running
`command` agent reads it on its stdin mid-run; an idle one is woken by a run whose prompt it is.
The agent here echoes what it reads, so the test sees the text the agent got."""

from __future__ import annotations

import time

import pytest

from apps.repos.reviews import CommentInput, change_comment_create, change_review_create
from apps.runs.creation import NewRun, run_create
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.threads.models import DeliveryState, Message, MessageKind
from tests.reviews.changes import CALC, open_change
from tests.runs.conftest import run_status, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("local_sandbox", "run_settings"),
]

# Reads user messages and prints each back as text, until it has `wanted` of them.
ECHO = """
import json, sys
wanted = {wanted}
for n in range(wanted):
    message = json.loads(sys.stdin.readline())
    print(json.dumps({{"type": "text", "text": "GOT " + message["text"]}}), flush=True)
print(json.dumps({{"type": "result", "text": "done"}}), flush=True)
"""


def review_the_change(owner, change):
    change_comment_create(
        actor=owner, change=change, path="calc.py",
        comment=CommentInput(line=6, body="It must add: use +."),
    )  # fmt: skip
    return change_review_create(
        actor=owner, change=change, verdict="request_changes", body="One fix, please."
    )


def assert_carries_the_comment(text: str) -> None:
    assert "`calc.py` line 6" in text  # path and line
    assert "> 6 |     return a - b" in text  # the code at the line
    assert "  5 | def f2(a, b):" in text  # ...with the lines around it
    assert "It must add: use +." in text and "One fix, please." in text


def make_change(team, agent, thread, tmp_path):
    fixed = CALC.replace("def f2(a, b):\n    return a + b", "def f2(a, b):\n    return a - b")
    change, _ = open_change(
        team=team, agent=agent, tmp_path=tmp_path, thread=thread,
        base_files={"calc.py": CALC}, files={"calc.py": fixed},
    )  # fmt: skip
    return change


def test_a_review_reaches_the_running_agent_mid_run(
    owner, thread, command_agent, program, background, tmp_path
):
    agent = command_agent(program(ECHO.format(wanted=2)), handle="coder")
    change = make_change(owner.team, agent, thread, tmp_path)
    run = run_create(NewRun(agent=agent, prompt="start", thread=thread))
    background.execute(run.pk)
    wait_for(lambda: Message.objects.filter(thread=thread, body="GOT start").exists(), what="start")

    sent = time.monotonic()
    review = review_the_change(owner, change)
    echoed = wait_for(
        lambda: (
            Message.objects.filter(thread=thread, body__contains="GOT ")
            .exclude(body="GOT start")
            .first()
        ),  # fmt: skip
        what="the review echoed back by the agent",
    )

    assert time.monotonic() - sent < 2.0
    assert_carries_the_comment(echoed.body)
    background.join()
    assert run_status(run.pk) == RunStatus.SUCCEEDED
    message = Message.objects.get(pk=review.message_id)
    assert message.kind == MessageKind.REVIEW and message.data["change_id"] == change.pk
    delivery = message.deliveries.get()
    assert (delivery.agent_id, delivery.state, delivery.run_id) == (
        agent.pk, DeliveryState.DELIVERED, run.pk)  # fmt: skip


def test_a_review_wakes_an_idle_agent_with_a_run_whose_prompt_it_is(
    owner, thread, command_agent, program, tmp_path
):
    agent = command_agent(program(ECHO.format(wanted=1)), handle="coder")
    change = make_change(owner.team, agent, thread, tmp_path)

    review = review_the_change(owner, change)
    run = Run.objects.get(agent=agent)
    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    echoed = Message.objects.get(thread=thread, body__startswith="GOT ")
    assert_carries_the_comment(echoed.body)
    delivery = Message.objects.get(pk=review.message_id).deliveries.get()
    assert (delivery.state, delivery.run_id) == (DeliveryState.DELIVERED, run.pk)
    assert Message.objects.get(pk=review.message_id).data["version"] == 1
