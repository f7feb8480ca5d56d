"""The real claude and codex CLIs in the harness image call ozweb's MCP tools.

A live ozweb (a daphne subprocess with its own SQLite database, runs dispatched in-process into
Docker containers on the host network) and the scripted model server on 127.0.0.1. Everything is
set up through the REST API with a user token; the only configuration the agents get is what
the adapters write. The model answers with a tool call of an ozweb MCP tool; the tests check
that the tool was offered, that its effect shows in ozweb, and that the agent it addressed
(`@helper`, the example shell agent) is woken and runs.

Without Docker these tests skip, except under CI=true, where that is a failure. The first tests
check the executor's wiring alone, with a sandbox that records what it was asked to start.
"""

from __future__ import annotations

import json
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import tests.support.model_server as model_server_module
from apps.agents.models import Harness
from apps.runs.creation import NewRun, run_create
from apps.runs.executor import execute_run
from apps.runs.models import RunStatus
from apps.runs.sandboxes.base import SandboxSpec
from tests.e2e.servers import Daphne, base_env, free_port, manage
from tests.factories import AgentFactory
from tests.harnesses.mcp_support import offered_tools as offered_tool_names
from tests.harnesses.mcp_support import with_codex_namespaces
from tests.support.model_server import (
    ANTHROPIC,
    DEFAULT_FINAL_TEXT,
    RESPONSES,
    ModelServer,
    RecordedRequest,
    Reply,
)

live = pytest.mark.docker  # the two tests with real CLIs in containers
pytestmark = [pytest.mark.timeout(300)]

RUN_TIMEOUT = 150.0
FINISHED = {"succeeded", "failed", "cancelled", "timed_out"}
HELPER_COMMAND = "python3 -u $OZWEB_AGENTS_DIR/shell_agent.py"


# -- the executor's wiring ----------------------------------------------------------------------


class RecordingSandbox:
    """Records the spec it is asked to start, then refuses (the run fails to start)."""

    kind = "recording"

    def __init__(self, *, isolated: bool) -> None:
        self.isolated = isolated
        self.spec: SandboxSpec | None = None

    def start(self, spec: SandboxSpec):
        self.spec = spec
        raise RuntimeError("recorded")

    def find(self, run_id: int, skip_stdout_lines: int = 0):
        return None


def spec_for(thread, harness: str, *, isolated: bool, **fields: Any) -> SandboxSpec:
    agent = AgentFactory(team=thread.team, handle=harness, harness=harness, **fields)
    run = run_create(NewRun(agent=agent, prompt="hi", thread=thread))
    sandbox = RecordingSandbox(isolated=isolated)
    execute_run(run.pk, sandbox=sandbox)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "recorded" in run.error
    assert sandbox.spec is not None
    return sandbox.spec


@pytest.mark.django_db
def test_the_executor_points_claude_at_ozwebs_mcp_endpoint_in_the_container(thread, settings):
    settings.OZWEB_AGENT_API_URL = "http://ozweb.internal:8000/"
    spec = spec_for(thread, Harness.CLAUDE, isolated=True)
    config = json.loads(spec.home_files[".claude/ozweb-mcp.json"])
    server = config["mcpServers"]["ozweb"]
    assert server["url"] == "http://ozweb.internal:8000/mcp/"
    assert server["headers"] == {"Authorization": "Bearer ${OZWEB_TOKEN}"}
    flag = spec.argv.index("--mcp-config")
    assert spec.argv[flag + 1] == "/home/agent/.claude/ozweb-mcp.json"
    token = spec.env["OZWEB_TOKEN"]
    assert token and token not in json.dumps(spec.home_files) and token not in spec.argv
    assert spec.env["OZWEB_URL"] == "http://ozweb.internal:8000/"


@pytest.mark.django_db
def test_a_local_sandbox_gets_the_config_path_in_the_agents_host_home(thread, settings):
    spec = spec_for(thread, Harness.CLAUDE, isolated=False)
    flag = spec.argv.index("--mcp-config")
    assert spec.argv[flag + 1] == str(spec.home / ".claude" / "ozweb-mcp.json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("harness", "config_file"),
    [(Harness.CODEX, ".codex/config.toml"), (Harness.GEMINI, ".gemini/settings.json")],
)
def test_the_executor_gives_codex_and_gemini_the_server(thread, settings, harness, config_file):
    settings.OZWEB_AGENT_API_URL = "http://127.0.0.1:8123"
    spec = spec_for(thread, harness, isolated=True)
    assert "http://127.0.0.1:8123/mcp/" in spec.home_files[config_file]
    assert spec.env["OZWEB_TOKEN"] not in spec.home_files[config_file]


@pytest.mark.django_db
def test_the_command_harness_gets_no_mcp_config(thread):
    spec = spec_for(thread, Harness.COMMAND, isolated=True, command="true")
    assert spec.home_files == {} and "--mcp-config" not in spec.argv
    assert spec.env["OZWEB_TOKEN"] and spec.env["OZWEB_URL"]


# -- the live ozweb ----------------------------------------------------------------------------


@dataclass
class Ozweb:
    daphne: Daphne
    token: str
    team: int

    def get(self, path: str) -> Any:
        return self.daphne.get_json(f"/api/v1{path}", token=self.token)

    def post(self, path: str, data: dict[str, Any]) -> Any:
        try:
            return self.daphne.post_json(f"/api/v1{path}", data, token=self.token)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"POST {path}: {exc.code} {exc.read()[:2000]!r}") from None

    def agent(self, **fields: Any) -> dict[str, Any]:
        return self.post(f"/teams/{self.team}/agents/", fields)

    def provider(self, kind: str, base_url: str) -> dict[str, Any]:
        """The team's provider of `kind`: its harnesses reach the model server through
        ozweb's gateway (the isolated sandbox has no other way out)."""
        return self.post(
            f"/teams/{self.team}/providers/",
            {"name": kind, "kind": kind, "base_url": base_url, "api_key": f"sk-{kind}-fake"},
        )

    def thread(self, name: str) -> dict[str, Any]:
        return self.post(f"/teams/{self.team}/threads/", {"name": name})

    def say(self, thread: dict[str, Any], body: str) -> dict[str, Any]:
        return self.post(f"/threads/{thread['id']}/messages/", {"body": body})

    def messages(self, thread: dict[str, Any]) -> list[dict[str, Any]]:
        return self.get(f"/threads/{thread['id']}/messages/?limit=200")["results"]

    def runs(self, thread: dict[str, Any]) -> list[dict[str, Any]]:
        return self.get(f"/runs/?thread={thread['id']}&limit=100")["results"]

    def finished_run(self, thread: dict[str, Any], handle: str) -> dict[str, Any]:
        """The first run of @handle in the thread, once it has ended."""

        def ended() -> dict[str, Any] | None:
            runs = [r for r in self.runs(thread) if r["agent_handle"] == handle]
            first = min(runs, key=lambda r: r["id"]) if runs else None
            return first if first and first["status"] in FINISHED else None

        return wait_for(ended, RUN_TIMEOUT, f"a finished run of @{handle}", self.daphne.log)


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, log: Callable[[], str]
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; daphne log:\n{log()}")


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture
def ozweb(tmp_path: Path, harness_image: str) -> Iterator[Ozweb]:
    port = free_port()
    env = base_env(
        OZWEB_VAR_DIR=str(tmp_path / "var"),
        OZWEB_RUN_DISPATCH="inprocess",
        OZWEB_SANDBOX="docker",  # isolated: the product's default network
        OZWEB_HARNESS_IMAGE=harness_image,
        OZWEB_AGENT_API_URL=f"http://127.0.0.1:{port}",
        OZWEB_INSTANCE=f"mcp-test-{uuid.uuid4().hex[:8]}",
    )
    manage(env, "migrate", "--noinput", "-v0")
    token = manage(env, "create_api_user", "mcp-owner", "--team", "MCP").strip().splitlines()[-1]
    daphne = Daphne(env, port=port).start(tmp_path)
    try:
        team = daphne.get_json("/api/v1/teams/", token=token)["results"][0]["id"]
        yield Ozweb(daphne, token, team)
    finally:
        daphne.stop()


# -- codex: namespaced MCP tools -----------------------------------------------------------------


@pytest.fixture
def namespaced_tool_calls(monkeypatch) -> None:
    """Codex routes MCP calls by `namespace` + bare name (see with_codex_namespaces)."""
    monkeypatch.setattr(
        model_server_module,
        "responses_events",
        with_codex_namespaces(model_server_module.responses_events),
    )


def offered_tools(request: RecordedRequest) -> set[str]:
    return offered_tool_names(request.body)


OZWEB_TOOLS = {
    "whoami",
    "list_team",
    "post_message",
    "send_message",
    "read_inbox",
    "ack",
    "delegate",
    "get_run",
    "put_artifact",
    "get_artifact",
    "list_artifacts",
    "memory_get",
    "memory_set",
    "memory_list",
}


# -- checks --------------------------------------------------------------------------------------


def assert_helper_ran(ozweb: Ozweb, thread: dict[str, Any], expected_output: str) -> None:
    helper = ozweb.finished_run(thread, "helper")
    assert helper["status"] == "succeeded", helper
    produced = [m for m in ozweb.messages(thread) if m["run"] == helper["id"]]
    results = [m for m in produced if m["kind"] == "tool_result"]
    assert results and results[0]["body"].strip() == expected_output, produced


def agent_messages_to_helper(
    ozweb: Ozweb, thread: dict[str, Any], author: str
) -> list[dict[str, Any]]:
    return [
        m
        for m in ozweb.messages(thread)
        if m["author"]["type"] == "agent"
        and m["author"]["handle"] == author
        and m["kind"] == "text"
        and any(d["handle"] == "helper" for d in m["deliveries"])
    ]


# -- the tests -----------------------------------------------------------------------------------


@live
def test_claude_sends_a_message_through_mcp_that_wakes_another_agent(ozweb, model_server):
    ozweb.agent(
        handle="claude",
        harness="claude",
        model="claude-fake",
        environment={"CLAUDE_CODE_MAX_RETRIES": "1"},
    )
    ozweb.provider("anthropic", model_server.url)
    ozweb.agent(handle="helper", harness="command", command=HELPER_COMMAND)
    model_server.queue(
        Reply.tool_call(
            "mcp__ozweb__send_message",
            {"to": ["helper"], "body": "please run `echo from-claude`"},
        )
    )  # then the default: the final text
    thread = ozweb.thread("mcp-claude")

    ozweb.say(thread, "@claude tell helper to echo")

    claude = ozweb.finished_run(thread, "claude")
    assert claude["status"] == "succeeded", (claude, ozweb.daphne.log())
    events = ozweb.get(f"/runs/{claude['id']}/events/")
    started = next(e for e in events if e["kind"] == "session_started")
    assert {"name": "ozweb", "status": "connected"} in started["data"]["mcp_servers"]
    requests = model_server.main_requests(ANTHROPIC)
    assert len(requests) >= 2
    offered = offered_tools(requests[0])
    assert {f"mcp__ozweb__{name}" for name in OZWEB_TOOLS} <= offered, sorted(offered)
    # The tool ran in ozweb: its result went back to the model.
    result = _tool_result(requests[1])
    assert result and result.get("is_error") is not True, result

    sent = agent_messages_to_helper(ozweb, thread, "claude")
    assert len(sent) == 1, ozweb.messages(thread)
    assert "please run `echo from-claude`" in sent[0]["body"]
    assert sent[0]["run"] == claude["id"]
    assert_helper_ran(ozweb, thread, "from-claude")
    produced = [m for m in ozweb.messages(thread) if m["run"] == claude["id"]]
    assert any(m["kind"] == "text" and m["body"] == DEFAULT_FINAL_TEXT for m in produced)
    assert any(m["kind"] == "tool_call" and m["data"].get("kind") == "mcp" for m in produced), (
        produced
    )


@live
@pytest.mark.usefixtures("namespaced_tool_calls")
def test_codex_posts_and_writes_memory_through_mcp(ozweb, model_server):
    ozweb.agent(
        handle="codex",
        harness="codex",
        model="gpt-fake",
    )
    ozweb.provider("openai", model_server.openai_url)
    ozweb.agent(handle="helper", harness="command", command=HELPER_COMMAND)
    model_server.queue(
        Reply.tool_call("mcp__ozweb__memory_set", {"key": "codex/note", "value": "42 apples"}),
        Reply.tool_call(
            "mcp__ozweb__post_message", {"body": "@helper please run `echo from-codex`"}
        ),
    )  # then the default: the final text
    thread = ozweb.thread("mcp-codex")

    ozweb.say(thread, "@codex note the apples and ask helper to echo")

    codex = ozweb.finished_run(thread, "codex")
    assert codex["status"] == "succeeded", (codex, ozweb.daphne.log())
    requests = model_server.main_requests(RESPONSES)
    assert len(requests) == 3
    offered = offered_tools(requests[0])
    assert {f"mcp__ozweb__{name}" for name in OZWEB_TOOLS} <= offered, sorted(offered)

    note = ozweb.get(f"/teams/{ozweb.team}/memory/codex/note/")
    assert note["value"] == "42 apples"
    sent = agent_messages_to_helper(ozweb, thread, "codex")
    assert len(sent) == 1 and sent[0]["run"] == codex["id"], ozweb.messages(thread)
    assert_helper_ran(ozweb, thread, "from-codex")
    calls = [
        m for m in ozweb.messages(thread) if m["run"] == codex["id"] and m["kind"] == "tool_call"
    ]
    assert [c["data"]["name"] for c in calls] == [
        "mcp__ozweb__memory_set",
        "mcp__ozweb__post_message",
    ]
    results = [
        e["data"] for e in ozweb.get(f"/runs/{codex['id']}/events/") if e["kind"] == "tool_result"
    ]
    assert [r["status"] for r in results] == ["success", "success"], results


def _tool_result(request: RecordedRequest) -> dict[str, Any]:
    """The newest tool_result block of an Anthropic request."""
    content = request.body["messages"][-1]["content"]
    blocks = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return blocks[-1] if blocks else {}


QUIET_CHILD = (
    "python3 -u -c 'import json, sys\n"
    "sys.stdin.readline()\n"
    'print(json.dumps({"type": "result", "text": "the answer is forty-two"}))\''
)


@live
def test_claude_delegates_and_the_childs_result_comes_back_without_the_child_reporting(
    ozweb, model_server
):
    ozweb.agent(
        handle="claude",
        harness="claude",
        model="claude-fake",
        environment={"CLAUDE_CODE_MAX_RETRIES": "1"},
    )
    ozweb.provider("anthropic", model_server.url)
    ozweb.agent(handle="quiet", harness="command", command=QUIET_CHILD)
    model_server.queue(
        Reply.tool_call("mcp__ozweb__delegate", {"to": "quiet", "goal": "compute the answer"})
    )
    thread = ozweb.thread("mcp-delegate")

    ozweb.say(thread, "@claude find the answer, ask quiet")

    parent = ozweb.finished_run(thread, "claude")
    assert parent["status"] == "succeeded", (parent, ozweb.daphne.log())
    child = ozweb.finished_run(thread, "quiet")
    assert child["status"] == "succeeded" and child["parent"] == parent["id"], child
    # The child called no tool; ozweb posted its result back to claude, which was woken with it.
    child_events = ozweb.get(f"/runs/{child['id']}/events/")
    assert not any(e["kind"] == "tool_call" for e in child_events)
    result = next(
        m for m in ozweb.messages(thread) if m["data"].get("delegation_result") == child["id"]
    )
    assert "forty-two" in result["body"]
    assert [d["handle"] for d in result["deliveries"]] == ["claude"]

    def woken() -> dict[str, Any] | None:
        runs = [r for r in ozweb.runs(thread) if r["agent_handle"] == "claude"]
        later = [r for r in runs if r["id"] != parent["id"] and r["status"] in FINISHED]
        return later[0] if later else None

    follow_up = wait_for(woken, RUN_TIMEOUT, "claude woken with the result", ozweb.daphne.log)
    assert follow_up["status"] == "succeeded", follow_up
    assert "forty-two" in follow_up["prompt"]
    assert follow_up["session_id"] == parent["session_id"], "it resumed its own session"
    assert any("forty-two" in r.text() for r in model_server.main_requests(ANTHROPIC))
