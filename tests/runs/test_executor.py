"""execute_run end to end with the command harness in the local sandbox (no Docker needed).

The Docker sandbox and the real claude/codex CLIs are exercised in test_docker_runs.py.
"""

from __future__ import annotations

import time

import pytest

from apps.agents.services import agent_update
from apps.runs.creation import NewRun, run_create
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.runs.routing import run_send_message
from apps.runs.transitions import run_request_cancel, run_transition
from apps.threads.deliveries import RunSlot, deliveries_take
from apps.threads.models import Delivery, DeliveryState, Message, MessageKind
from apps.threads.services import message_post
from tests.runs.conftest import run_status, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("local_sandbox")]

SHELL_AGENT = "python3 -u $OZWEB_AGENTS_DIR/shell_agent.py"


def feed(thread) -> list[tuple[str, str]]:
    return [(m.kind, m.body) for m in Message.objects.filter(thread=thread).order_by("seq")]


def test_a_mention_queues_a_run_that_streams_tool_calls_into_the_thread(
    owner, thread, command_agent
):
    agent = command_agent(SHELL_AGENT, handle="shell")
    message = message_post(actor=owner, thread=thread, body="@shell echo hello-from-tool")

    run = Run.objects.get(agent=agent)
    assert run.status == RunStatus.QUEUED and run.thread == thread
    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.exit_code == 0 and run.sandbox == "local"
    kinds = [kind for kind, _ in feed(thread)]
    assert kinds.index(MessageKind.TOOL_CALL) < kinds.index(MessageKind.TOOL_RESULT)
    result = Message.objects.get(thread=thread, kind=MessageKind.TOOL_RESULT)
    assert "hello-from-tool" in result.body and result.run_id == run.pk
    assert result.author_agent == agent
    delivery = Delivery.objects.get(message=message)
    assert delivery.state == DeliveryState.DELIVERED and delivery.run == run
    assert run.events.filter(kind="turn_finished").exists()
    statuses = [body for kind, body in feed(thread) if kind == MessageKind.STATUS]
    assert any("finished run" in s for s in statuses)
    agent.refresh_from_db()
    assert agent.status == "idle"


def test_a_reply_reaches_the_running_process_within_a_second(
    owner, thread, command_agent, program, background
):
    command = program(
        """
        import json, sys
        first = json.loads(sys.stdin.readline())
        print(json.dumps({"type": "text", "text": "waiting for a reply"}), flush=True)
        second = json.loads(sys.stdin.readline())
        print(json.dumps({"type": "text", "text": "got: " + second["text"]}), flush=True)
        print(json.dumps({"type": "result", "text": "done"}), flush=True)
        """
    )
    agent = command_agent(command)
    run = run_create(NewRun(agent=agent, prompt="start", thread=thread))
    background.execute(run.pk)
    wait_for(lambda: Message.objects.filter(body="waiting for a reply").exists(), what="output")

    sent = time.monotonic()
    run_send_message(actor=owner, run=run, body="turn left")
    reply = wait_for(
        lambda: Message.objects.filter(thread=thread, body__contains="got: ").first(),
        what="the reply echoed back",
    )
    assert time.monotonic() - sent < 1.0
    assert "turn left" in reply.body
    background.join()
    assert run_status(run.pk) == RunStatus.SUCCEEDED
    human = Message.objects.get(thread=thread, body="turn left")
    assert human.deliveries.get().state == DeliveryState.DELIVERED


def test_stop_ends_the_process_within_two_seconds(
    owner, thread, command_agent, program, background
):
    agent = command_agent(program("import time\nprint('working', flush=True)\ntime.sleep(60)\n"))
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))
    background.execute(run.pk)
    wait_for(lambda: run_status(run.pk) == RunStatus.RUNNING, what="running")

    stopped = time.monotonic()
    run_request_cancel(actor=owner, run=run)
    wait_for(lambda: run_status(run.pk) == RunStatus.CANCELLED, timeout=5, what="cancelled")
    assert time.monotonic() - stopped < 2.0
    background.join()


def test_a_queued_run_is_cancelled_at_once(owner, thread, command_agent):
    run = run_create(NewRun(agent=command_agent("true"), prompt="go", thread=thread))
    run_request_cancel(actor=owner, run=run)
    assert run_status(run.pk) == RunStatus.CANCELLED
    execute_run(run.pk)  # a late worker leaves it alone
    assert run_status(run.pk) == RunStatus.CANCELLED


def test_a_run_past_its_timeout_is_killed(thread, command_agent, program):
    agent = command_agent(program("import time\ntime.sleep(60)\n"))
    type(agent).objects.filter(pk=agent.pk).update(run_timeout_seconds=1)
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))
    started = time.monotonic()
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.TIMED_OUT
    assert time.monotonic() - started < 6


def test_a_harness_that_exits_non_zero_fails_with_its_code_and_stderr(thread, command_agent):
    agent = command_agent("echo 'model exploded: 401 unauthorized' >&2; exit 3")
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.exit_code == 3
    assert "model exploded" in run.error and "model exploded" in run.stderr_tail
    assert Message.objects.filter(thread=thread, kind=MessageKind.ERROR).exists()
    agent.refresh_from_db()
    assert agent.status == "error"


def test_garbage_on_stdout_is_kept_and_never_crashes_the_run(thread, command_agent, program):
    command = program(
        r"""
        import json, sys
        sys.stdin.readline()
        print("plain words, not JSON", flush=True)
        print('{"type": "text", "text": "trunc', flush=True)
        noise = "\x00\x01 binary-ish \udcff".encode("utf-8", "surrogateescape")
        print(noise.decode("latin-1"), flush=True)
        print(json.dumps({"type": "result", "text": "survived"}), flush=True)
        """
    )
    run = run_create(NewRun(agent=command_agent(command), prompt="go", thread=thread))
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    bodies = " ".join(body for _, body in feed(thread))
    assert "plain words, not JSON" in bodies
    assert run.result_text == "survived"


def test_secret_values_are_masked_before_anything_is_stored(owner, thread, command_agent):
    agent = command_agent('echo "token is $API_TOKEN"; echo "$API_TOKEN" >&2; exit 1')
    agent_update(actor=owner, agent=agent, secrets={"API_TOKEN": "sk-very-secret-123"})
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))
    execute_run(run.pk)
    run.refresh_from_db()
    stored = " ".join(
        [run.error, run.stderr_tail, *[body for _, body in feed(thread)]]
        + [str(e.data) for e in run.events.all()]
    )
    assert "sk-very-secret-123" not in stored
    assert "token is ••••••" in stored


def test_a_follow_up_resumes_the_same_session(owner, thread, command_agent, program):
    command = program(
        """
        import json, os, sys
        for line in sys.stdin:
            msg = json.loads(line)
            session = os.environ.get("OZWEB_SESSION_ID") or "session-1"
            print(json.dumps({"type": "session", "id": session}), flush=True)
            resumed = os.environ.get("OZWEB_SESSION_ID", "none")
            print(json.dumps({"type": "result", "text": "resumed " + resumed}), flush=True)
            break
        """
    )
    agent = command_agent(command)
    first = run_create(NewRun(agent=agent, prompt="one", thread=thread))
    execute_run(first.pk)
    first.refresh_from_db()
    assert first.session_id == "session-1"

    run_send_message(actor=owner, run=first, body="and another thing")
    follow_up = Run.objects.exclude(pk=first.pk).get(agent=agent)
    assert follow_up.resumes == first
    execute_run(follow_up.pk)
    follow_up.refresh_from_db()
    assert follow_up.status == RunStatus.SUCCEEDED
    assert follow_up.result_text == "resumed session-1"


def test_a_run_whose_worker_died_is_failed_by_the_reconciler(thread, command_agent, settings):
    from django.utils import timezone

    from apps.runs.reconcile import reconcile

    run = run_create(NewRun(agent=command_agent("true"), prompt="go", thread=thread))
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        sandbox="local",
        heartbeat_at=timezone.now() - timezone.timedelta(minutes=5),
    )
    counts = reconcile()
    run.refresh_from_db()
    assert counts["failed"] == 1
    assert run.status == RunStatus.FAILED and "worker" in run.error


def test_a_harness_without_mid_run_input_gets_the_reply_as_its_next_turn(
    owner, thread, command_agent, program, background, monkeypatch
):
    """Gemini and opencode take no input mid-run: the reply waits, then a resumed run takes it."""
    from apps.harnesses.base import Capabilities
    from apps.harnesses.command import CommandAdapter

    monkeypatch.setattr(
        CommandAdapter,
        "capabilities",
        Capabilities(mid_run_input=False, resume=True, usage=True, cost=True),
    )
    command = program(
        """
        import json, sys, time
        line = sys.stdin.readline()
        print(json.dumps({"type": "session", "id": "s-1"}), flush=True)
        time.sleep(1.5)
        done = "did: " + json.loads(line)["text"][-20:]
        print(json.dumps({"type": "result", "text": done}), flush=True)
        """
    )
    agent = command_agent(command)
    first = run_create(NewRun(agent=agent, prompt="first job", thread=thread))
    background.execute(first.pk)
    wait_for(lambda: run_status(first.pk) == RunStatus.RUNNING, what="running")

    reply = run_send_message(actor=owner, run=first, body="second job")
    assert reply.deliveries.get().state == DeliveryState.PENDING
    background.join()

    follow_up = wait_for(
        lambda: Run.objects.exclude(pk=first.pk).filter(agent=agent).first(), what="a follow-up"
    )
    assert follow_up.resumes_id == first.pk and "second job" in follow_up.prompt
    execute_run(follow_up.pk)
    follow_up.refresh_from_db()
    assert follow_up.status == RunStatus.SUCCEEDED and follow_up.result_text.endswith("second job")
    assert reply.deliveries.get().state == DeliveryState.DELIVERED


def test_a_message_that_arrives_before_the_run_starts_follows_its_prompt(
    owner, thread, command_agent, program
):
    """The run's prompt holds the messages it was created for; one that came while it was
    queued is written after it, not marked delivered unread."""
    command = program(
        """
        import json, sys
        jobs = [json.loads(sys.stdin.readline())["text"].split("@bot ")[-1] for _ in range(2)]
        print(json.dumps({"type": "result", "text": " | ".join(jobs)}), flush=True)
        """
    )
    agent = command_agent(command, run_timeout_seconds=20)
    first = message_post(actor=owner, thread=thread, body="@bot first job")
    run = Run.objects.get(agent=agent)
    second = message_post(actor=owner, thread=thread, body="@bot second job")

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result_text == "first job | second job"
    for message in (first, second):
        delivery = Delivery.objects.get(message=message)
        assert (delivery.state, delivery.run_id) == (DeliveryState.DELIVERED, run.pk)


def test_a_message_the_ended_process_could_not_take_goes_to_the_agents_next_run(
    owner, thread, command_agent
):
    """Claimed for a run whose stdin is gone: given back, not the ended run's, and dispatched
    when that run ends."""
    from apps.runs.executor import RunExecution

    class Gone:
        def write(self, data: bytes) -> None:
            raise BrokenPipeError("stdin closed")

    agent = command_agent("true")
    first = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    run_transition(run=first, from_statuses=[RunStatus.QUEUED], to=RunStatus.RUNNING)
    message = message_post(actor=owner, thread=thread, body="@bot one more thing")
    execution = RunExecution(first, sandbox=None)  # type: ignore[arg-type]
    execution.adapter, execution.process = execution.make_adapter(), Gone()

    execution.deliver(deliveries_take(slot=RunSlot.of(first)))

    delivery = Delivery.objects.get(message=message)
    assert (delivery.state, delivery.run_id) == (DeliveryState.PENDING, None)
    assert "ended before it could take this" in delivery.reason
    run_transition(run=first, from_statuses=[RunStatus.RUNNING], to=RunStatus.SUCCEEDED)
    follow_up = Run.objects.exclude(pk=first.pk).get(agent=agent)
    assert "one more thing" in follow_up.prompt
    assert Delivery.objects.get(message=message).run_id == follow_up.pk
