"""Approvals with the real harness CLIs in Docker against the scripted model server: the
tool call waits for a human, and the answer (or its absence) reaches the harness."""

from __future__ import annotations

import pytest

from apps.agents.models import ApprovalPolicy, Harness
from apps.agents.services import agent_update
from apps.approvals.models import Approval, ApprovalStatus
from apps.runs.creation import NewRun, run_create
from apps.runs.models import Run, RunStatus
from apps.threads.models import Message, MessageKind
from tests.conftest import api_client_for
from tests.factories import AgentFactory
from tests.gateway.conftest import make_provider
from tests.runs.conftest import wait_for
from tests.support.model_server import RESPONSES, ModelServer, Reply

pytestmark = [
    pytest.mark.docker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_docker_sandbox", "live_gateway"),
    pytest.mark.timeout(180),
]

# Claude Code runs read-only commands such as `echo` without asking; this one writes.
WRITING = "touch /workspace/made.txt && echo ran-$((6*7))"


@pytest.fixture(scope="module")
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
    return agent_update(actor=owner, agent=agent, approval_policy=ApprovalPolicy.ASK)


def start(background, agent, thread, model_server) -> tuple[Run, Approval]:
    model_server.queue(Reply.shell(WRITING))
    run = run_create(NewRun(agent=agent, prompt="Make the file", thread=thread))
    background.execute(run.pk)
    approval = wait_for(
        lambda: Approval.objects.filter(run=run).first(), timeout=90, what="the approval"
    )
    return run, approval


def finished(run: Run, background) -> Run:
    background.join(timeout=90)
    run.refresh_from_db()
    return run


def tool_result(run: Run) -> Message:
    return Message.objects.get(run=run, kind=MessageKind.TOOL_RESULT)


def test_claude_waits_for_approval_then_runs_the_command(
    owner, thread, model_server, background, claude_agent
):
    run, approval = start(background, claude_agent, thread, model_server)
    assert approval.status == ApprovalStatus.PENDING
    assert approval.tool == "Bash" and approval.input["command"] == WRITING
    card = Message.objects.get(pk=approval.message_id)
    assert card.kind == MessageKind.APPROVAL and card.data["command"] == WRITING
    # Waiting: the tool has not run.
    assert not Message.objects.filter(run=run, kind=MessageKind.TOOL_RESULT).exists()
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING

    response = api_client_for(owner.user).post(
        f"/api/v1/approvals/{approval.pk}/", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"

    run = finished(run, background)
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    result = tool_result(run)
    assert result.data["status"] == "success" and "ran-42" in result.body
    card.refresh_from_db()
    assert card.data["status"] == "approved" and card.data["decided_by"]


def test_claude_denied_gets_the_denial_as_the_tool_result(
    owner, thread, model_server, background, claude_agent
):
    run, approval = start(background, claude_agent, thread, model_server)
    response = api_client_for(owner.user).post(
        f"/api/v1/approvals/{approval.pk}/",
        {"decision": "deny", "reason": "not now"},
        format="json",
    )
    assert response.status_code == 200, response.content

    run = finished(run, background)
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    result = tool_result(run)
    assert result.data["status"] == "error"
    assert "Denied by" in result.body and "not now" in result.body
    assert "ran-42" not in result.body


def test_claude_unanswered_approval_expires_as_a_deny(
    owner, thread, model_server, background, claude_agent
):
    agent = agent_update(actor=owner, agent=claude_agent, approval_timeout_s=2)
    run, approval = start(background, agent, thread, model_server)

    run = finished(run, background)
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.EXPIRED
    assert "No answer within 2 s" in approval.reason
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    result = tool_result(run)
    assert result.data["status"] == "error" and "No answer within 2 s" in result.body
    card = Message.objects.get(pk=approval.message_id)
    assert card.data["status"] == "expired"


def test_codex_waits_for_approval_then_runs_the_command(owner, thread, model_server, background):
    agent = AgentFactory(
        team=thread.team,
        handle="codex",
        harness=Harness.CODEX,
        model="gpt-fake",
    )
    make_provider(owner, kind="openai", base_url=model_server.openai_url)
    agent = agent_update(actor=owner, agent=agent, approval_policy=ApprovalPolicy.ASK)
    run, approval = start(background, agent, thread, model_server)
    assert approval.tool == "commandExecution" and approval.input["command"] == WRITING
    assert not Message.objects.filter(run=run, kind=MessageKind.TOOL_RESULT).exists()

    response = api_client_for(owner.user).post(
        f"/api/v1/approvals/{approval.pk}/", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 200, response.content

    run = finished(run, background)
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    result = tool_result(run)
    assert result.data["status"] == "success" and "ran-42" in result.body
    assert model_server.main_requests(RESPONSES)
