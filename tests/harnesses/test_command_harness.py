"""The command harness: its adapter, and the two example agents run through it for real."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from apps.harnesses import EventKind, InvocationRequest, NormalizedEvent, StdinMode, get_adapter
from apps.harnesses.command import CommandAdapter
from tests.harnesses.conftest import REPO_ROOT

AGENTS_DIR = REPO_ROOT / "examples" / "agents"


def kinds(events: list[NormalizedEvent]) -> list[str]:
    return [str(event.kind) for event in events]


def of_kind(events: list[NormalizedEvent], kind: str) -> list[dict]:
    return [event.data for event in events if event.kind == kind]


# -- adapter ---------------------------------------------------------------------------------


def test_invocation_streams_the_prompt_as_the_first_user_line():
    adapter = get_adapter("command", command="python3 agent.py --fast")

    invocation = adapter.build_invocation(
        InvocationRequest(prompt="hello", model="m1", instructions="be brief", session_id="s-1")
    )

    assert invocation.argv == ["python3", "agent.py", "--fast"]
    assert invocation.stdin_mode == StdinMode.STREAM
    assert json.loads(invocation.stdin) == {"type": "user", "text": "hello"}
    assert invocation.env["OZWEB_MODEL"] == "m1"
    assert invocation.env["OZWEB_INSTRUCTIONS"] == "be brief"
    assert invocation.env["OZWEB_SESSION_ID"] == "s-1"
    assert json.loads(adapter.encode_user_message("more") or b"") == {
        "type": "user",
        "text": "more",
    }
    assert json.loads(adapter.interrupt_message() or b"") == {"type": "interrupt"}


def test_protocol_lines_map_to_normalized_events():
    adapter = CommandAdapter(["agent"])
    lines = [
        {"type": "session", "id": "s-9", "model": "none"},
        {"type": "text", "text": "Looking."},
        {"type": "tool_call", "id": "c1", "name": "shell", "input": {"command": "ls"}},
        {"type": "tool_result", "id": "c1", "output": "a.py\n", "exit_code": 0},
        {"type": "tool_call", "id": "c2", "name": "mcp__ozweb__send_message", "input": {}},
        {"type": "tool_result", "id": "c2", "output": "sent"},
        {"type": "warning", "message": "slow disk"},
        {"type": "error", "message": "minor"},
        {"type": "result", "text": "Done.", "usage": {"input_tokens": 3, "output_tokens": 4}},
    ]

    events = [e for line in lines for e in adapter.parse_line(json.dumps(line))]
    events += adapter.finish(0, "")

    assert kinds(events) == [
        "session_started",
        "assistant_text",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "warning",
        "error",
        "usage",
        "turn_finished",
        "process_exited",
    ]
    assert all(event.session_id == "s-9" for event in events)
    calls = of_kind(events, "tool_call")
    assert [c["kind"] for c in calls] == ["shell", "mcp"]
    assert calls[0]["command"] == "ls"
    assert of_kind(events, "error")[0]["fatal"] is False
    assert of_kind(events, "usage")[0]["input_tokens"] == 3
    assert of_kind(events, "turn_finished")[0]["result_text"] == "Done."


def test_plain_text_output_is_assistant_text_and_a_silent_exit_still_finishes():
    adapter = CommandAdapter(["echo"])

    events = adapter.parse_line("just some text\n") + adapter.parse_line("{truncated")
    events += adapter.parse_line('{"type": "mystery"}')
    events += adapter.finish(2, "boom\n")

    assert kinds(events) == [
        "session_started",
        "assistant_text",
        "assistant_text",
        "warning",
        "error",
        "turn_finished",
        "process_exited",
    ]
    assert of_kind(events, "error")[0]["message"] == "boom"
    assert of_kind(events, "turn_finished")[0]["status"] == "error"


# -- example agents, run as the executor would run them ---------------------------------------


class AgentRun:
    def __init__(self, script: str, prompt: str, workspace: Path) -> None:
        self.adapter = get_adapter("command", command=[sys.executable, str(AGENTS_DIR / script)])
        invocation = self.adapter.build_invocation(InvocationRequest(prompt=prompt, model=""))
        self.process = subprocess.Popen(
            invocation.argv,
            cwd=workspace,
            env={"PATH": "/usr/bin:/bin", "OZWEB_WORKSPACE": str(workspace), **invocation.env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.events: list[NormalizedEvent] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.write(invocation.stdin)

    def _read(self) -> None:
        for raw in self.process.stdout:
            events = self.adapter.parse_line(raw.decode())
            with self._changed:
                self.events += events
                self._changed.notify_all()

    def write(self, data: bytes | None) -> None:
        self.process.stdin.write(data or b"")
        self.process.stdin.flush()

    def wait_for(self, kind: EventKind, count: int = 1) -> None:
        with self._changed:
            done = self._changed.wait_for(
                lambda: sum(e.kind == kind for e in self.events) >= count, timeout=20
            )
        assert done, kinds(self.events)

    def finish(self) -> int:
        self.process.stdin.close()
        code = self.process.wait(timeout=20)
        self._reader.join(timeout=5)
        self.events += self.adapter.finish(code, self.process.stderr.read().decode())
        return code


@pytest.fixture
def agent_runs():
    started: list[AgentRun] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def test_shell_agent_runs_commands_until_stdin_closes(tmp_path, agent_runs):
    (tmp_path / "marker.txt").write_text("x")
    run = AgentRun("shell_agent.py", "$ ls", tmp_path)
    agent_runs.append(run)
    run.wait_for(EventKind.TURN_FINISHED)

    run.write(run.adapter.encode_user_message("echo second; exit 3"))
    run.wait_for(EventKind.TURN_FINISHED, 2)
    code = run.finish()

    assert code == 0
    events = run.events
    assert kinds(events)[0] == "session_started"
    calls = of_kind(events, "tool_call")
    assert [c["command"] for c in calls] == ["ls", "echo second; exit 3"]
    assert all(c["kind"] == "shell" for c in calls)
    results = of_kind(events, "tool_result")
    assert "marker.txt" in results[0]["output"]
    assert results[0]["status"] == "success"
    assert results[1]["output"] == "second\n"
    assert (results[1]["exit_code"], results[1]["status"]) == (3, "error")
    finished = of_kind(events, "turn_finished")
    assert [f["result_text"] for f in finished] == [
        "`ls` exited with code 0.",
        "`echo second; exit 3` exited with code 3.",
    ]
    assert of_kind(events, "process_exited")[0]["exit_code"] == 0


def test_shell_agent_stops_when_told(tmp_path, agent_runs):
    run = AgentRun("shell_agent.py", "stop", tmp_path)
    agent_runs.append(run)

    assert run.process.wait(timeout=20) == 0
    run.process.stdin.close()
    run._reader.join(timeout=5)
    assert of_kind(run.events, "turn_finished")[0]["result_text"] == "Stopping."


def test_shell_agent_interrupt_kills_the_running_command(tmp_path, agent_runs):
    run = AgentRun("shell_agent.py", "sleep 30; echo never", tmp_path)
    agent_runs.append(run)
    run.wait_for(EventKind.TOOL_CALL)

    run.write(run.adapter.interrupt_message())
    run.wait_for(EventKind.TURN_FINISHED)
    code = run.finish()

    assert code == 0
    assert of_kind(run.events, "tool_result")[0]["status"] == "interrupted"
    assert of_kind(run.events, "turn_finished")[0]["status"] == "interrupted"


def test_review_agent_reports_findings_as_markdown(tmp_path, agent_runs):
    (tmp_path / "good.py").write_text("x = 1  # TODO: name this better\n")
    (tmp_path / "bad.py").write_text("def broken(:\n    pass\n")
    (tmp_path / "notes.md").write_text("FIXME later\n")
    (tmp_path / "blob.bin").write_bytes(b"\0" * 1_100_000)
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "skip.py").write_text("def nope(:\n")
    run = AgentRun("review_agent.py", "review please", tmp_path)
    agent_runs.append(run)
    run.wait_for(EventKind.TURN_FINISHED)

    code = run.finish()

    assert code == 0
    assert [c["name"] for c in of_kind(run.events, "tool_call")] == [
        "py_compile",
        "lint",
        "large_files",
    ]
    results = of_kind(run.events, "tool_result")
    assert results[0]["output"] == "2 Python files compiled, 1 with errors"
    assert results[1]["output"].startswith("2 TODO markers")
    assert results[2]["output"] == "1 files over 1 MB"
    report = of_kind(run.events, "turn_finished")[0]["result_text"]
    assert report.startswith(f"# Review of `{tmp_path}`")
    assert "2 problem(s) found." in report
    assert "| syntax errors | 1 |" in report
    assert "`bad.py:" in report
    assert "`blob.bin (1.1 MB)`" in report
    assert "`good.py:1: x = 1  # TODO: name this better`" in report
    assert "skip.py" not in report


def test_review_agent_narrows_to_a_named_directory(tmp_path, agent_runs):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "other.py").write_text("# TODO\n")
    run = AgentRun("review_agent.py", "look at pkg only", tmp_path)
    agent_runs.append(run)
    run.wait_for(EventKind.TURN_FINISHED)
    run.finish()

    report = of_kind(run.events, "turn_finished")[0]["result_text"]
    assert f"# Review of `{tmp_path / 'pkg'}`" in report
    assert "No blocking problems found." in report
    assert "| TODO/FIXME/XXX | 0 |" in report
