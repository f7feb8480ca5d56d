"""The real pinned CLIs, on the host, with the MCP config their adapter writes: each connects to
a recording MCP server on 127.0.0.1 with the token taken from $OZWEB_TOKEN (never written to a
file), offers its tools to the scripted model, and calls one when the model asks.

Without the CLIs these tests skip, except under CI=true, where a missing CLI is a failure.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.support.model_server as model_server_module
from apps.harnesses import EventKind, InvocationRequest, McpServer, StdinMode, get_adapter
from tests.harnesses.conftest import CLI_BIN_DIR
from tests.harnesses.mcp_support import RecordingMcpServer, offered_tools, with_codex_namespaces
from tests.harnesses.test_real_clis import claude_env, require_cli
from tests.support.model_server import DEFAULT_FINAL_TEXT, ModelServer, Reply

pytestmark = [pytest.mark.harness_cli, pytest.mark.timeout(120)]

TOKEN = "ozr_test-run-token-0123456789"


@pytest.fixture
def mcp_server() -> Iterator[RecordingMcpServer]:
    with RecordingMcpServer() as server:
        yield server


def run_cli(harness: str, tmp_path: Path, agent_env: dict[str, str], mcp_url: str):
    """One turn of the real CLI; returns (adapter, exit code, stderr)."""
    home, workspace = tmp_path / "home", tmp_path / "workspace"
    home.mkdir()
    workspace.mkdir()
    adapter = get_adapter(harness)
    invocation = adapter.build_invocation(
        InvocationRequest(
            prompt="Post a note",
            model="claude-sonnet-4-5" if harness == "opencode" else "fake-model",
            env=agent_env,
            mcp=McpServer(url=mcp_url),
            home=str(home),
        )
    )
    for relative, content in invocation.home_files.items():
        target = home / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        assert TOKEN not in content
    binary = require_cli(invocation.argv[0])
    env = {
        "PATH": f"{CLI_BIN_DIR}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        **agent_env,
        "OZWEB_TOKEN": TOKEN,
        **invocation.env,
    }
    streaming = invocation.stdin_mode == StdinMode.STREAM
    process = subprocess.Popen(  # noqa: S603 -- the pinned CLI
        [str(binary), *invocation.argv[1:]],
        cwd=workspace,
        env=env,
        stdin=subprocess.PIPE if streaming else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    reader.start()
    killer = threading.Timer(90, process.kill)
    killer.start()
    if streaming:
        process.stdin.write(invocation.stdin)
        process.stdin.flush()
    events = []
    # Interactive like the executor: answer the adapter's handshake, end after the turn.
    for raw in process.stdout:
        new = adapter.parse_line(raw.decode(errors="replace"))
        events += new
        if streaming and not process.stdin.closed:
            for data in adapter.take_outgoing():
                process.stdin.write(data)
                process.stdin.flush()
            if any(e.kind == EventKind.TURN_FINISHED for e in new):
                process.stdin.close()
    process.wait(timeout=30)
    killer.cancel()
    reader.join(timeout=5)
    stderr = b"".join(errors).decode(errors="replace")
    events += adapter.finish(process.returncode, stderr[-2000:])
    return events, process.returncode, stderr


def assert_called_through_mcp(events, exit_code, stderr, mcp_server, *, name: str) -> None:
    assert exit_code == 0, stderr[-3000:]
    calls = [e.data for e in events if e.kind == EventKind.TOOL_CALL]
    assert [(c["name"], c["kind"]) for c in calls] == [(name, "mcp")], calls
    results = [e.data for e in events if e.kind == EventKind.TOOL_RESULT]
    assert results and results[0]["status"] == "success", results
    texts = [e.data["text"] for e in events if e.kind == EventKind.ASSISTANT_TEXT]
    assert texts[-1] == DEFAULT_FINAL_TEXT
    assert mcp_server.calls == [("post_message", {"body": "hello from MCP", "thread": None})]
    assert mcp_server.authorizations and set(mcp_server.authorizations) == {f"Bearer {TOKEN}"}


CALL = {"body": "hello from MCP"}


def test_claude_calls_an_mcp_tool(model_server: ModelServer, mcp_server, tmp_path):
    model_server.queue(Reply.tool_call("mcp__ozweb__post_message", CALL))
    events, code, stderr = run_cli("claude", tmp_path, claude_env(model_server), mcp_server.url)

    started = next(e for e in events if e.kind == EventKind.SESSION_STARTED)
    assert {"name": "ozweb", "status": "connected"} in started.data["mcp_servers"]
    assert_called_through_mcp(events, code, stderr, mcp_server, name="mcp__ozweb__post_message")
    offered = offered_tools(model_server.main_requests()[0].body)
    assert {"mcp__ozweb__post_message", "mcp__ozweb__memory_set"} <= offered


def test_codex_calls_an_mcp_tool(model_server: ModelServer, mcp_server, tmp_path, monkeypatch):
    monkeypatch.setattr(
        model_server_module,
        "responses_events",
        with_codex_namespaces(model_server_module.responses_events),
    )
    model_server.queue(Reply.tool_call("mcp__ozweb__post_message", CALL))
    agent_env = {"OPENAI_BASE_URL": model_server.openai_url, "OPENAI_API_KEY": "sk-openai-fake"}
    events, code, stderr = run_cli("codex", tmp_path, agent_env, mcp_server.url)

    assert_called_through_mcp(events, code, stderr, mcp_server, name="mcp__ozweb__post_message")
    offered = offered_tools(model_server.main_requests()[0].body)
    assert {"mcp__ozweb__post_message", "mcp__ozweb__memory_set"} <= offered


def test_gemini_calls_an_mcp_tool(model_server: ModelServer, mcp_server, tmp_path):
    model_server.queue(Reply.tool_call("mcp_ozweb_post_message", CALL))
    agent_env = {"GEMINI_API_KEY": "fake-gemini-key", "GOOGLE_GEMINI_BASE_URL": model_server.url}
    events, code, stderr = run_cli("gemini", tmp_path, agent_env, mcp_server.url)

    assert_called_through_mcp(events, code, stderr, mcp_server, name="mcp_ozweb_post_message")
    offered = offered_tools(model_server.main_requests()[0].body)
    assert {"mcp_ozweb_post_message", "mcp_ozweb_memory_set"} <= offered


def test_opencode_calls_an_mcp_tool(model_server: ModelServer, mcp_server, tmp_path):
    # opencode's first request (the session title) offers no tools: answer it with text.
    model_server.queue(Reply.final_text("Title"), Reply.tool_call("ozweb_post_message", CALL))
    events, code, stderr = run_cli("opencode", tmp_path, claude_env(model_server), mcp_server.url)

    assert_called_through_mcp(events, code, stderr, mcp_server, name="ozweb_post_message")
    offered = set().union(*(offered_tools(r.body) for r in model_server.main_requests()))
    assert {"ozweb_post_message", "ozweb_memory_set"} <= offered
