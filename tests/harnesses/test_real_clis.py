"""The real harness CLIs, on the host, against the scripted model server on 127.0.0.1.

Each test builds the invocation with the adapter, starts the pinned CLI from var/harness-clis
(scripts/harness-clis/install.sh) with a fresh $HOME and workspace, parses its stdout with the
adapter, and checks both the normalized events and the requests the model server received.
Without the CLIs these tests skip, except under CI=true, where a missing CLI is a failure.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from apps.harnesses import (
    Adapter,
    EventKind,
    InvocationRequest,
    NormalizedEvent,
    StdinMode,
    get_adapter,
)
from tests.harnesses.conftest import CLI_BIN_DIR
from tests.support.model_server import DEFAULT_FINAL_TEXT, ModelServer, Reply

pytestmark = [pytest.mark.harness_cli, pytest.mark.timeout(120)]

TURN_TIMEOUT = 60.0
PROMPT = "Run the echo command"


def require_cli(name: str) -> Path:
    path = CLI_BIN_DIR / name
    if path.exists():
        return path
    reason = f"{name} is not installed in {CLI_BIN_DIR}; run scripts/harness-clis/install.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class CliRun:
    """One harness process: stdout lines go through the adapter as they arrive."""

    def __init__(
        self,
        adapter: Adapter,
        *,
        home: Path,
        workspace: Path,
        agent_env: Mapping[str, str],
        prompt: str = PROMPT,
        model: str = "fake-model",
        session_id: str | None = None,
    ) -> None:
        self.adapter = adapter
        self.invocation = adapter.build_invocation(
            InvocationRequest(prompt=prompt, model=model, session_id=session_id, env=agent_env)
        )
        for relative, content in self.invocation.home_files.items():
            target = home / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        binary = require_cli(self.invocation.argv[0])
        env = {
            "PATH": f"{CLI_BIN_DIR}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
            **agent_env,
            **self.invocation.env,
        }
        streaming = self.invocation.stdin_mode == StdinMode.STREAM
        self.process = subprocess.Popen(
            [str(binary), *self.invocation.argv[1:]],
            cwd=workspace,
            env=env,
            stdin=subprocess.PIPE if streaming else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.events: list[NormalizedEvent] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if streaming:
            self.write(self.invocation.stdin)

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            events = self.adapter.parse_line(raw.decode(errors="replace"))
            for data in self.adapter.take_outgoing():  # a JSON-RPC handshake's next request
                self.write(data)
            with self._changed:
                self.events += events
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.stderr.append(raw.decode(errors="replace"))

    def write(self, data: bytes | None) -> None:
        assert data is not None and self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def wait_for(self, predicate: Callable[[list[NormalizedEvent]], bool]) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.events), timeout=TURN_TIMEOUT):
                self.kill()
                pytest.fail(f"timed out; events: {self.kinds()}; stderr: {self.stderr_tail()}")

    def wait_for_turns(self, count: int) -> None:
        self.wait_for(
            lambda events: sum(e.kind == EventKind.TURN_FINISHED for e in events) >= count
        )

    def finish(self) -> int:
        self.close_stdin()
        try:
            exit_code = self.process.wait(timeout=TURN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"did not exit; events: {self.kinds()}; stderr: {self.stderr_tail()}")
        for reader in self._readers:
            reader.join(timeout=5)
        self.events += self.adapter.finish(exit_code, self.stderr_tail())
        return exit_code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stderr_tail(self) -> str:
        return "".join(self.stderr[-20:])

    def kinds(self) -> list[str]:
        return [str(event.kind) for event in self.events]

    def of_kind(self, kind: EventKind) -> list[dict]:
        return [event.data for event in self.events if event.kind == kind]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def runs():
    started: list[CliRun] = []
    yield started
    for run in started:
        run.kill()


def assert_one_tool_turn(run: CliRun, exit_code: int, *, command: str = "echo hello-from-tool"):
    kinds = run.kinds()
    assert exit_code == 0, run.stderr_tail()
    # Warnings may come first (codex app-server reports its configuration).
    first = next(e for e in run.events if e.kind != EventKind.WARNING)
    assert first.kind == EventKind.SESSION_STARTED, kinds
    assert first.session_id
    calls = run.of_kind(EventKind.TOOL_CALL)
    assert len(calls) == 1, kinds
    assert calls[0]["kind"] == "shell"
    assert calls[0]["command"] == command
    results = run.of_kind(EventKind.TOOL_RESULT)
    assert results[0]["call_id"] == calls[0]["call_id"]
    assert results[0]["status"] == "success"
    assert command.rsplit(" ", 1)[-1] in results[0]["output"]
    assert run.of_kind(EventKind.ASSISTANT_TEXT)[-1]["text"] == DEFAULT_FINAL_TEXT
    usage = run.of_kind(EventKind.USAGE)
    assert usage and usage[-1]["input_tokens"] > 0 and usage[-1]["output_tokens"] > 0
    finished = run.of_kind(EventKind.TURN_FINISHED)
    assert [f["status"] for f in finished] == ["success"]
    assert kinds[-1] == EventKind.PROCESS_EXITED
    assert not run.of_kind(EventKind.ERROR)


# -- Claude Code -----------------------------------------------------------------------------


def claude_env(server: ModelServer) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-fake"}


def start_claude(server, home, workspace, runs, **kwargs) -> CliRun:
    run = CliRun(
        get_adapter("claude"),
        home=home,
        workspace=workspace,
        agent_env=claude_env(server),
        **kwargs,
    )
    runs.append(run)
    return run


def test_claude_runs_one_tool_turn(model_server, home, workspace, runs):
    run = start_claude(model_server, home, workspace, runs)
    run.wait_for_turns(1)
    exit_code = run.finish()

    assert_one_tool_turn(run, exit_code)
    assert run.of_kind(EventKind.USAGE)[-1]["cost_usd"] is not None
    main = model_server.main_requests()
    assert len(main) == 2
    assert all(r.header("x-api-key") == "sk-ant-fake" for r in main)
    assert PROMPT in main[0].text()


def test_claude_takes_a_message_while_its_tool_runs(model_server, home, workspace, runs):
    model_server.queue(Reply.shell("sleep 3; echo done"))
    run = start_claude(model_server, home, workspace, runs)
    run.wait_for(lambda events: any(e.kind == EventKind.TOOL_CALL for e in events))

    run.write(run.adapter.encode_user_message("STEER: also mention the weather"))
    run.wait_for_turns(1)
    exit_code = run.finish()

    assert exit_code == 0, run.stderr_tail()
    assert run.of_kind(EventKind.TOOL_CALL)[0]["command"] == "sleep 3; echo done"
    assert "done" in run.of_kind(EventKind.TOOL_RESULT)[0]["output"]
    main = model_server.main_requests()
    assert "STEER: also mention the weather" not in main[0].text()
    assert "STEER: also mention the weather" in main[1].text()
    assert [f["status"] for f in run.of_kind(EventKind.TURN_FINISHED)] == ["success"]


def test_claude_resumes_a_session_in_a_new_process(model_server, home, workspace, runs):
    first = start_claude(model_server, home, workspace, runs)
    first.wait_for_turns(1)
    assert first.finish() == 0, first.stderr_tail()
    session_id = first.events[0].session_id

    second = start_claude(
        model_server, home, workspace, runs, prompt="FOLLOW-UP question", session_id=session_id
    )
    second.wait_for_turns(1)
    exit_code = second.finish()

    assert_one_tool_turn(second, exit_code)
    assert second.events[0].data["resumed"] is True
    assert second.events[-1].session_id == session_id
    follow_up = model_server.main_requests()[2]
    assert "FOLLOW-UP question" in follow_up.text()
    assert PROMPT in follow_up.text()  # the history came along


# -- Codex -----------------------------------------------------------------------------------


def codex_env(server: ModelServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.openai_url, "OPENAI_API_KEY": "sk-fake"}


def start_codex(server, home, workspace, runs, **kwargs) -> CliRun:
    run = CliRun(
        get_adapter("codex"),
        home=home,
        workspace=workspace,
        agent_env=codex_env(server),
        model="gpt-fake",
        **kwargs,
    )
    runs.append(run)
    return run


def test_codex_app_server_runs_one_tool_turn(model_server, home, workspace, runs):
    run = start_codex(model_server, home, workspace, runs)
    run.wait_for_turns(1)
    exit_code = run.finish()

    assert_one_tool_turn(run, exit_code)
    assert run.of_kind(EventKind.USAGE)[-1]["cumulative"] is True
    main = model_server.main_requests()
    assert [r.route for r in main] == ["/v1/responses", "/v1/responses"]
    assert main[0].header("authorization") == "Bearer sk-fake"
    assert main[0].body["model"] == "gpt-fake"


def test_codex_app_server_resumes_the_thread_in_a_new_process(model_server, home, workspace, runs):
    first = start_codex(model_server, home, workspace, runs)
    first.wait_for_turns(1)
    assert first.finish() == 0, first.stderr_tail()
    thread_id = first.adapter.session_id

    second = start_codex(
        model_server, home, workspace, runs, prompt="FOLLOW-UP question", session_id=thread_id
    )
    second.wait_for_turns(1)
    exit_code = second.finish()

    assert_one_tool_turn(second, exit_code)
    assert second.adapter.session_id == thread_id
    follow_up = model_server.main_requests()[2]
    assert "FOLLOW-UP question" in follow_up.text()
    assert PROMPT in follow_up.text()


def test_codex_reports_a_model_error(model_server, home, workspace, runs):
    model_server.queue(Reply.http_error(400, "scripted bad request"))
    run = start_codex(model_server, home, workspace, runs)
    run.wait_for_turns(1)
    exit_code = run.finish()

    assert exit_code == 0  # app-server itself is fine; the turn failed
    errors = run.of_kind(EventKind.ERROR)
    assert errors and "scripted bad request" in errors[0]["message"]
    assert run.of_kind(EventKind.TURN_FINISHED)[-1]["status"] == "error"


# -- Gemini CLI and opencode -----------------------------------------------------------------


def test_gemini_runs_one_tool_turn(model_server, home, workspace, runs):
    run = CliRun(
        get_adapter("gemini"),
        home=home,
        workspace=workspace,
        agent_env={"GEMINI_API_KEY": "fake-gemini-key", "GOOGLE_GEMINI_BASE_URL": model_server.url},
        model="fake-model",
    )
    runs.append(run)
    exit_code = run.finish()

    assert_one_tool_turn(run, exit_code)
    assert all(":streamGenerateContent" in r.path for r in model_server.main_requests())


def test_opencode_runs_one_tool_turn(model_server, home, workspace, runs):
    run = CliRun(
        get_adapter("opencode"),
        home=home,
        workspace=workspace,
        agent_env=claude_env(model_server),
        model="anthropic/claude-sonnet-4-5",
    )
    runs.append(run)
    exit_code = run.finish()

    assert_one_tool_turn(run, exit_code)
    assert all(r.route == "/v1/messages" for r in model_server.main_requests())


def test_claude_fails_fast_on_a_bad_request(model_server, home, workspace, runs):
    model_server.queue(Reply.http_error(400, "scripted bad request"))
    run = start_claude(model_server, home, workspace, runs)
    run.wait_for_turns(1)
    started = time.monotonic()
    exit_code = run.finish()

    assert exit_code == 1
    assert time.monotonic() - started < TURN_TIMEOUT
    error = run.of_kind(EventKind.ERROR)[0]
    assert error["http_status"] == 400
    assert "scripted bad request" in error["message"]
    assert run.of_kind(EventKind.TURN_FINISHED)[-1]["status"] == "error"


def test_codex_takes_a_message_while_its_tool_runs(model_server, home, workspace, runs):
    model_server.queue(Reply.shell("sleep 3; echo done"))
    run = start_codex(model_server, home, workspace, runs)
    run.wait_for(lambda events: any(e.kind == EventKind.TOOL_CALL for e in events))

    run.write(run.adapter.encode_user_message("STEER: also mention the weather"))
    run.wait_for_turns(1)
    exit_code = run.finish()

    assert exit_code == 0, run.stderr_tail()
    main = model_server.main_requests()
    assert "STEER: also mention the weather" not in main[0].text()
    assert "STEER: also mention the weather" in main[1].text()
    assert [f["status"] for f in run.of_kind(EventKind.TURN_FINISHED)] == ["success"]


def test_codex_runs_a_second_turn_in_the_same_process(model_server, home, workspace, runs):
    run = start_codex(model_server, home, workspace, runs)
    run.wait_for_turns(1)
    run.write(run.adapter.encode_user_message("SECOND turn please"))
    run.wait_for_turns(2)
    assert run.finish() == 0, run.stderr_tail()
    assert "SECOND turn please" in model_server.main_requests()[-1].text()
