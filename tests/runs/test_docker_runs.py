"""Runs in real Docker containers from the offline-built harness image, isolated as the product
runs them (`--network none`, ozweb through the relay): the real claude and codex CLIs reach the
project's scripted model server only as a team provider, through ozweb's gateway."""

from __future__ import annotations

import time

import pytest

from apps.agents.models import Harness
from apps.runs.creation import NewRun, run_create
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.runs.routing import run_send_message
from apps.runs.transitions import run_request_cancel
from apps.threads.models import Message, MessageKind
from apps.threads.services import message_post
from tests.factories import AgentFactory
from tests.gateway.conftest import PROVIDER_KEY, make_provider
from tests.runs.conftest import run_status, wait_for
from tests.support.model_server import DEFAULT_FINAL_TEXT, RESPONSES, ModelServer, Reply

pytestmark = [
    pytest.mark.docker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_docker_sandbox", "live_gateway"),
    pytest.mark.timeout(240),
]


@pytest.fixture
def model_server():
    with ModelServer() as server:
        yield server


@pytest.fixture
def claude_agent(owner, thread, model_server):
    agent = AgentFactory(
        team=thread.team,
        handle="claude",
        harness=Harness.CLAUDE,
        model="claude-fake",
        environment={"CLAUDE_CODE_MAX_RETRIES": "1"},
    )
    make_provider(owner, base_url=model_server.url)
    return agent


@pytest.fixture
def codex_agent(owner, thread, model_server):
    agent = AgentFactory(
        team=thread.team,
        handle="codex",
        harness=Harness.CODEX,
        model="gpt-fake",
    )
    make_provider(owner, kind="openai", base_url=model_server.openai_url)
    return agent


def thread_feed(thread) -> list[Message]:
    return list(Message.objects.filter(thread=thread).order_by("seq"))


def assert_tool_turn_in_feed(thread, run: Run) -> None:
    produced = [m for m in thread_feed(thread) if m.run_id == run.pk and m.kind != "status"]
    kinds = [m.kind for m in produced]
    call = kinds.index(MessageKind.TOOL_CALL)
    result = kinds.index(MessageKind.TOOL_RESULT)
    final = len(kinds) - 1 - kinds[::-1].index(MessageKind.TEXT)
    assert call < result < final, kinds
    assert produced[call].data["kind"] == "shell"
    assert produced[call].data["command"] == "echo hello-from-tool"
    assert "hello-from-tool" in produced[result].body
    assert produced[final].body == DEFAULT_FINAL_TEXT
    run.refresh_from_db()
    assert run.usage["input_tokens"] > 0 and run.usage["output_tokens"] > 0
    assert run.session_id
    finished = [m for m in thread_feed(thread) if m.kind == "status" and m.run_id == run.pk][-1]
    assert "tokens" in finished.body


def test_claude_in_a_container_runs_a_tool_turn_into_the_thread(
    owner, thread, model_server, claude_agent
):
    agent = claude_agent
    message_post(actor=owner, thread=thread, body="@claude Run the echo command")
    run = Run.objects.get(agent=agent)

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    assert run.sandbox == "docker" and run.container_id
    assert run.usage.get("cost_usd") is not None
    assert_tool_turn_in_feed(thread, run)
    requests = model_server.main_requests()
    assert requests and all(r.header("x-api-key") == PROVIDER_KEY for r in requests)
    assert "Run the echo command" in requests[0].text()
    stored = " ".join(m.body for m in thread_feed(thread)) + str(list(run.events.values("data")))
    assert PROVIDER_KEY not in stored


def test_codex_in_a_container_runs_a_tool_turn_into_the_thread(
    owner, thread, model_server, codex_agent
):
    agent = codex_agent
    run = run_create(NewRun(agent=agent, prompt="Run the echo command", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    assert_tool_turn_in_feed(thread, run)
    requests = model_server.main_requests(RESPONSES)
    assert len(requests) == 2
    assert all(r.header("authorization") == f"Bearer {PROVIDER_KEY}" for r in requests)


def test_a_reply_while_claude_works_reaches_its_next_model_request(
    owner, thread, model_server, background, claude_agent
):
    model_server.queue(Reply.shell("sleep 3; echo done"))
    agent = claude_agent
    run = run_create(NewRun(agent=agent, prompt="Run the slow command", thread=thread))
    background.execute(run.pk)
    wait_for(
        lambda: Message.objects.filter(run=run, kind=MessageKind.TOOL_CALL).exists(),
        timeout=60,
        what="the tool call",
    )

    run_send_message(actor=owner, run=run, body="STEER: also mention the weather")
    background.join(timeout=90)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    requests = model_server.main_requests()
    assert "STEER: also mention the weather" not in requests[0].text()
    assert "STEER: also mention the weather" in requests[1].text()
    steer = Message.objects.get(thread=thread, body="STEER: also mention the weather")
    assert steer.deliveries.get().state == "delivered"


def test_stop_kills_the_container_within_two_seconds(owner, thread, background, command_agent):
    agent = command_agent("echo started; sleep 120", handle="sleeper")
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))
    background.execute(run.pk)
    wait_for(lambda: run_status(run.pk) == RunStatus.RUNNING, timeout=30, what="running")

    started = time.monotonic()
    run_request_cancel(actor=owner, run=run)
    wait_for(lambda: run_status(run.pk) == RunStatus.CANCELLED, timeout=10, what="cancelled")
    assert time.monotonic() - started < 2.0
    background.join()


def test_the_example_shell_agent_runs_in_the_image(owner, thread, command_agent):
    command_agent("python3 -u $OZWEB_AGENTS_DIR/shell_agent.py", handle="shell")
    message_post(actor=owner, thread=thread, body="@shell `id -u && pwd`")
    run = Run.objects.get(agent__handle="shell")
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    result = Message.objects.get(run=run, kind=MessageKind.TOOL_RESULT)
    assert result.body.split() == ["1000", "/workspace"]


def test_a_reply_while_codex_works_is_steered_into_its_running_turn(
    owner, thread, model_server, background, codex_agent
):
    """Codex runs as `codex app-server`: a reply mid-turn is a `turn/steer`."""
    model_server.queue(Reply.shell("sleep 3; echo done"))
    agent = codex_agent
    run = run_create(NewRun(agent=agent, prompt="Run the slow command", thread=thread))
    background.execute(run.pk)
    wait_for(
        lambda: Message.objects.filter(run=run, kind=MessageKind.TOOL_CALL).exists(),
        timeout=60,
        what="the tool call",
    )

    reply = run_send_message(actor=owner, run=run, body="STEER: and then list files")
    background.join(timeout=90)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    requests = model_server.main_requests(RESPONSES)
    assert "STEER: and then list files" not in requests[0].text()
    assert "STEER: and then list files" in requests[1].text()
    assert reply.deliveries.get().state == "delivered"
    assert Run.objects.filter(agent=agent).count() == 1, "taken mid-run: no follow-up run"


def test_a_follow_up_to_codex_resumes_its_thread(owner, thread, model_server, codex_agent):
    agent = codex_agent
    first = run_create(NewRun(agent=agent, prompt="Run the echo command", thread=thread))
    execute_run(first.pk)
    first.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED, (first.error, first.stderr_tail)

    run_send_message(actor=owner, run=first, body="FOLLOW-UP: and then list files")
    follow_up = Run.objects.exclude(pk=first.pk).get(agent=agent)
    assert follow_up.resumes == first
    execute_run(follow_up.pk)
    follow_up.refresh_from_db()
    assert follow_up.status == RunStatus.SUCCEEDED, (follow_up.error, follow_up.stderr_tail)
    assert follow_up.session_id == first.session_id
    last = model_server.main_requests(RESPONSES)[-2]
    assert "FOLLOW-UP: and then list files" in last.text()
    assert "Run the echo command" in last.text(), "the resumed thread keeps its history"
