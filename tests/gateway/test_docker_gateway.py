"""The real claude, codex and gemini CLIs in Docker, configured only with a team provider
(no key, no endpoint in the agent), in the product's isolated sandbox (`--network none`, ozweb
through the worker's relay socket): their model traffic goes through ozweb's gateway, served
live from this process (uvicorn on 127.0.0.1), to the scripted model server as the provider's
base URL. The server sees the provider's key; the container never does; the run's usage is
the sum of what the server reported; a spent budget stops the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.agents.models import Harness
from apps.api.serializers import RunOutput
from apps.gateway.models import BudgetStop
from apps.runs.creation import NewRun, run_create
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.threads.models import Message, MessageKind
from tests.e2e.servers import free_port
from tests.factories import AgentFactory
from tests.gateway.conftest import PROVIDER_KEY, make_provider
from tests.support.model_server import ANTHROPIC, GEMINI, RESPONSES, ModelServer, Reply

pytestmark = [
    pytest.mark.docker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_docker_sandbox"),
    pytest.mark.timeout(240),
]

# Prints the environment, then looks for the key in every file the run can write (the key's
# two halves are joined by the shell, so the command itself holds no copy of it).
KEY_HEAD, KEY_TAIL = PROVIDER_KEY[:12], PROVIDER_KEY[12:]
LOOK_FOR_THE_KEY = (
    f'env; grep -rlF "{KEY_HEAD}""{KEY_TAIL}" ~ /workspace /tmp 2>/dev/null; echo "grep-status=$?"'
)


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


def tool_output(run: Run) -> str:
    return "\n".join(m.body for m in Message.objects.filter(run=run, kind=MessageKind.TOOL_RESULT))


def assert_usage_is_what_the_server_reported(run: Run, server: ModelServer) -> None:
    usage = RunOutput(run).data["usage"]
    reported = [r.reported_usage for r in server.requests]
    assert usage["input_tokens"] == sum(r["input_tokens"] for r in reported) > 0
    assert usage["output_tokens"] == sum(r["output_tokens"] for r in reported) > 0
    assert usage["requests"] == len(server.requests)
    assert usage["reported"] == run.usage  # the harness's own count, kept beside


def assert_no_trace_of_the_key(run: Run, server: ModelServer, gateway: str) -> None:
    output = tool_output(run)
    assert f"={gateway}" in output, output[:2000]  # the env was printed: base URL → gateway
    assert "grep-status=1" in output, output[-2000:]  # no file holds the key
    assert PROVIDER_KEY not in output
    stored = str(list(run.events.values_list("data", flat=True)))
    assert PROVIDER_KEY not in stored


def test_claude_through_the_gateway(owner, thread, live_gateway, model_server):
    provider = make_provider(owner, base_url=model_server.url)
    agent = AgentFactory(team=thread.team, handle="claude", harness=Harness.CLAUDE,
                         model="claude-fake")  # fmt: skip
    # ...and tries the model server straight, past the gateway: the isolated default
    # (`--network none`, ozweb through the relay) has no route to it.
    port = model_server.url.rsplit(":", 1)[1].split("/")[0]
    model_server.queue(
        Reply.shell(
            f"{LOOK_FOR_THE_KEY}; (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null"
            " && echo direct=reached || echo direct=refused"
        )
    )
    run = run_create(NewRun(agent=agent, prompt="Look around", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    assert "direct=refused" in tool_output(run), tool_output(run)[-2000:]
    keyed = [r for r in model_server.requests if r.header("x-api-key") is not None]
    assert keyed and all(r.header("x-api-key") == PROVIDER_KEY for r in keyed)
    assert len(model_server.main_requests(ANTHROPIC)) == 2
    assert_no_trace_of_the_key(run, model_server, f"{live_gateway}/gateway/{provider.pk}")
    assert_usage_is_what_the_server_reported(run, model_server)


def test_codex_through_the_gateway(owner, thread, live_gateway, model_server):
    provider = make_provider(owner, kind="openai", base_url=model_server.openai_url)
    agent = AgentFactory(team=thread.team, handle="codex", harness=Harness.CODEX,
                         model="gpt-fake")  # fmt: skip
    model_server.queue(Reply.shell(LOOK_FOR_THE_KEY))
    run = run_create(NewRun(agent=agent, prompt="Look around", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    requests = model_server.main_requests(RESPONSES)
    assert len(requests) == 2
    assert all(r.header("authorization") == f"Bearer {PROVIDER_KEY}" for r in requests)
    assert_no_trace_of_the_key(run, model_server, f"{live_gateway}/gateway/{provider.pk}")
    assert_usage_is_what_the_server_reported(run, model_server)


def test_gemini_through_the_gateway(owner, thread, live_gateway, model_server):
    provider = make_provider(owner, kind="gemini", base_url=model_server.url)
    agent = AgentFactory(team=thread.team, handle="gemini", harness=Harness.GEMINI,
                         model="gemini-fake")  # fmt: skip
    model_server.queue(Reply.shell(LOOK_FOR_THE_KEY))
    run = run_create(NewRun(agent=agent, prompt="Look around", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    requests = model_server.main_requests(GEMINI)
    assert len(requests) == 2
    assert all(r.header("x-goog-api-key") == PROVIDER_KEY for r in requests)
    assert_no_trace_of_the_key(run, model_server, f"{live_gateway}/gateway/{provider.pk}")
    assert_usage_is_what_the_server_reported(run, model_server)


def test_a_spent_token_budget_stops_claude_at_its_second_request(
    owner, thread, live_gateway, model_server
):
    make_provider(owner, base_url=model_server.url)
    agent = AgentFactory(team=thread.team, handle="claude", harness=Harness.CLAUDE,
                         model="claude-fake", budget_run_tokens=30)  # fmt: skip
    run = run_create(NewRun(agent=agent, prompt="Run the echo command", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    message = "ozweb budget budget_run_tokens=30 spent: 42 tokens"
    assert run.status == RunStatus.FAILED
    assert message in run.error
    stop = BudgetStop.objects.get(run=run)
    assert (stop.budget, stop.message) == ("budget_run_tokens", message)
    # The first answer's tool ran; the request after it was refused, and none reached the
    # server after that.
    assert len(model_server.main_requests(ANTHROPIC)) == 1
    assert all(r.at < stop.created_at.timestamp() for r in model_server.requests)
    assert "hello-from-tool" in tool_output(run)
    notice = Message.objects.get(thread=thread, data__budget_stop__run=run.pk)
    assert message in notice.body


def test_a_provider_that_does_not_answer_fails_the_claude_run_saying_so(
    owner, thread, live_gateway
):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    make_provider(owner, base_url=dead)
    agent = AgentFactory(
        team=thread.team,
        handle="claude",
        harness=Harness.CLAUDE,
        model="claude-fake",
        environment={"CLAUDE_CODE_MAX_RETRIES": "0"},
    )
    run = run_create(NewRun(agent=agent, prompt="Anything", thread=thread))

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    # The gateway's 502 names the provider, and claude passes it on as the run's error.
    assert f"the provider 'anthropic' at {dead} did not answer" in run.error, run.error
