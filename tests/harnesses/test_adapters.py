"""Adapters against outputs and requests captured from the real CLIs (../shared/harness-samples).

Output samples are `.jsonl` (stdout lines) or `.txt` transcripts: `<seconds> <stdout line>`,
`<seconds> >>STDIN <line we wrote>`, and a final `rc=<exit code>`. Request samples
(`*_requests*.jsonl`) are replayed against the scripted model server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apps.harnesses import EventKind, NormalizedEvent, get_adapter
from apps.harnesses.base import Adapter
from tests.harnesses.conftest import SAMPLES_DIR
from tests.support.model_server import (
    ANTHROPIC,
    CHAT,
    DEFAULT_FINAL_TEXT,
    GEMINI,
    RESPONSES,
    ModelServer,
    classify,
    default_reply,
)

pytestmark = pytest.mark.skipif(not SAMPLES_DIR.is_dir(), reason=f"no samples at {SAMPLES_DIR}")

S = "session_started"
U = "user_message"
T = "assistant_text"
D = "assistant_text_delta"
C = "tool_call"
R = "tool_result"
USAGE = "usage"
W = "warning"
E = "error"
F = "turn_finished"
X = "process_exited"

EXPECTED_KINDS: dict[str, list[str]] = {
    "claude_stream_json_tool_turn.jsonl": [S, T, C, R, T, USAGE, F],
    "claude_stream_json_partial_messages.jsonl": [S, D, D, D, D, D, T, C, R, *[D] * 6, T, USAGE, F],
    "claude_error_400.jsonl": [S, E, USAGE, F],
    "claude_error_529.jsonl": [S, W, E, USAGE, F],
    "claude_conn_refused.jsonl": [S, W, E, USAGE, F],
    "claude_error_401_retries.jsonl": [S, *[W] * 9],
    "claude_stdin_two_turns.txt": [S, U, T, C, R, T, USAGE, F, U, T, C, R, T, USAGE, F, X],
    "claude_midrun_injection.txt": [S, U, T, C, R, U, T, C, R, T, USAGE, F, X],
    "claude_interrupt.txt": [S, U, T, C, R, U, USAGE, F, X],
    "qwen_stream_json_tool_turn.jsonl": [S, C, R, T, USAGE, F],
    "codex_app_server_steer.txt": [W, S, W, U, C, R, U, C, R, *[D] * 6, T, USAGE, F, X],
    "gemini_stream_json_tool_turn.jsonl": [S, U, D, T, C, R, D, T, USAGE, F],
    "opencode_run_json_tool_turn.jsonl": [S, T, C, R, USAGE, T, USAGE],
}

# `codex exec --json` output: ozweb drives codex as `codex app-server`, so no adapter reads it.
CODEX_EXEC_SAMPLES = {
    "codex_exec_json_tool_turn.jsonl",
    "codex_exec_resume.jsonl",
    "codex_openai_base_url_ws_fallback.jsonl",
    "codex_error_400.jsonl",
    "codex_error_401.jsonl",
    "codex_error_500.jsonl",
}

# Which adapter reads which sample: Qwen Code prints Claude-compatible stream-json.
ADAPTER_FOR_PREFIX = {"claude": "claude", "qwen": "claude", "codex": "codex"}


def adapter_for(sample: Path) -> Adapter:
    prefix = sample.name.split("_", 1)[0]
    return get_adapter(ADAPTER_FOR_PREFIX.get(prefix, prefix))


def replay(sample: Path, adapter: Adapter | None = None) -> list[NormalizedEvent]:
    """Feed a sample through an adapter the way the run executor will."""
    adapter = adapter or adapter_for(sample)
    events: list[NormalizedEvent] = []
    for line in sample.read_text().splitlines():
        if sample.suffix == ".txt":
            if line.startswith("rc="):
                events += adapter.finish(int(line.removeprefix("rc=")), "")
                continue
            _, _, line = line.partition(" ")
            if line.startswith(">>STDIN "):
                written = json.loads(line.removeprefix(">>STDIN "))
                if written.get("type") == "user":
                    adapter.encode_user_message(written["message"]["content"])
                elif (written.get("request") or {}).get("subtype") == "interrupt":
                    adapter.interrupt_message()
                continue
        events += adapter.parse_line(line)
    return events


def kinds(events: list[NormalizedEvent]) -> list[str]:
    return [str(event.kind) for event in events]


def of_kind(events: list[NormalizedEvent], kind: str) -> list[dict[str, Any]]:
    return [event.data for event in events if event.kind == kind]


OUTPUT_SAMPLES = (
    sorted(
        p
        for p in SAMPLES_DIR.glob("*")
        if p.is_file() and "_requests" not in p.name and p.name not in CODEX_EXEC_SAMPLES
    )
    if SAMPLES_DIR.is_dir()
    else []
)
REQUEST_SAMPLES = sorted(SAMPLES_DIR.glob("*_requests*.jsonl")) if SAMPLES_DIR.is_dir() else []


def test_every_sample_is_covered():
    assert {p.name for p in OUTPUT_SAMPLES} == set(EXPECTED_KINDS)
    assert REQUEST_SAMPLES, "no *_requests*.jsonl samples found"


@pytest.mark.parametrize("sample", OUTPUT_SAMPLES, ids=lambda p: p.name)
def test_sample_normalizes_to_expected_kinds(sample: Path):
    events = replay(sample)

    assert kinds(events) == EXPECTED_KINDS[sample.name]


@pytest.mark.parametrize("sample", OUTPUT_SAMPLES, ids=lambda p: p.name)
def test_every_tool_result_answers_an_earlier_tool_call(sample: Path):
    events = replay(sample)

    open_calls: set[str] = set()
    for event in events:
        if event.kind == EventKind.TOOL_CALL:
            open_calls.add(event.data["call_id"])
        elif event.kind == EventKind.TOOL_RESULT:
            assert event.data["call_id"] in open_calls
            open_calls.remove(event.data["call_id"])
    assert not open_calls


@pytest.mark.parametrize(
    "sample",
    [p for p in OUTPUT_SAMPLES if "tool_turn" in p.name or "two_turns" in p.name],
    ids=lambda p: p.name,
)
def test_tool_turn_samples_show_the_shell_call_and_its_output(sample: Path):
    events = replay(sample)

    calls = of_kind(events, "tool_call")
    results = of_kind(events, "tool_result")
    assert calls and all(call["kind"] == "shell" for call in calls)
    assert all(call["command"] == "echo hello-from-tool" for call in calls)
    assert all(result["status"] == "success" for result in results)
    assert all("hello-from-tool" in result["output"] for result in results)
    finished = of_kind(events, "turn_finished")
    assert all(f["status"] == "success" for f in finished)
    assert all(
        f["result_text"] == DEFAULT_FINAL_TEXT for f in finished if "opencode" not in sample.name
    )
    assert events[0].kind == EventKind.SESSION_STARTED
    assert all(event.session_id for event in events)


def test_claude_tool_turn_details():
    events = replay(SAMPLES_DIR / "claude_stream_json_tool_turn.jsonl")

    session = of_kind(events, "session_started")[0]
    assert session["model"] == "claude-opus-4-8[1m]"
    assert session["cwd"] == "/workspace"
    assert session["permission_mode"] == "bypassPermissions"
    assert "Bash" in session["tools"]
    assert session["resumed"] is False
    assert events[-1].session_id == "a19f6842-72f8-446b-a5b6-a39433d79035"
    call = of_kind(events, "tool_call")[0]
    assert call["name"] == "Bash"
    assert call["call_id"] == "toolu_8e67e606cedb451a8012"
    assert call["input"]["description"] == "Print a greeting"
    assert of_kind(events, "usage") == [
        {
            "input_tokens": 50,
            "output_tokens": 24,
            "cached_input_tokens": 0,
            "cost_usd": 0.001275,
            "cumulative": False,
        }
    ]
    finished = of_kind(events, "turn_finished")[0]
    assert finished["num_turns"] == 2
    assert finished["duration_ms"] == 223


def test_claude_partial_messages_stream_text_deltas():
    events = replay(SAMPLES_DIR / "claude_stream_json_partial_messages.jsonl")

    texts = of_kind(events, "assistant_text")
    deltas = of_kind(events, "assistant_text_delta")
    assert "".join(d["text"] for d in deltas) == "".join(t["text"] for t in texts)
    assert deltas[0]["message_id"] == texts[0]["message_id"]


def test_claude_cost_per_turn_from_the_processes_running_total():
    events = replay(SAMPLES_DIR / "claude_stdin_two_turns.txt")

    costs = [usage["cost_usd"] for usage in of_kind(events, "usage")]
    assert costs == [pytest.approx(0.00085), pytest.approx(0.00085)]
    assert [m["source"] for m in of_kind(events, "user_message")] == ["replay", "replay"]


def test_claude_midrun_message_is_echoed_inside_the_same_turn():
    events = replay(SAMPLES_DIR / "claude_midrun_injection.txt")

    messages = [m["text"] for m in of_kind(events, "user_message")]
    assert messages == [
        "first message: run the echo command",
        "MIDRUN message sent while tool is running",
    ]
    assert len(of_kind(events, "turn_finished")) == 1
    assert of_kind(events, "process_exited") == [
        {"exit_code": 0, "signal": None, "stderr_tail": ""}
    ]


def test_claude_interrupt_finishes_the_turn_as_interrupted():
    events = replay(SAMPLES_DIR / "claude_interrupt.txt")

    assert of_kind(events, "tool_result")[0]["status"] == "interrupted"
    assert of_kind(events, "turn_finished")[0]["status"] == "interrupted"
    assert not of_kind(events, "error")
    assert of_kind(events, "process_exited")[0]["exit_code"] == 1


@pytest.mark.parametrize(
    ("name", "http_status", "message_start"),
    [
        ("claude_error_400.jsonl", 400, "API Error: 400"),
        ("claude_error_529.jsonl", 529, "API Error: 529"),
        ("claude_conn_refused.jsonl", None, "API Error: Unable to connect"),
    ],
)
def test_error_samples_end_in_one_fatal_error(
    name: str, http_status: int | None, message_start: str
):
    events = replay(SAMPLES_DIR / name)

    errors = of_kind(events, "error")
    assert len(errors) == 1
    assert errors[0]["fatal"] is True
    assert errors[0]["message"].startswith(message_start)
    assert errors[0]["http_status"] == http_status
    assert of_kind(events, "turn_finished")[-1]["status"] == "error"


def test_claude_retries_become_warnings_with_retry_details():
    events = replay(SAMPLES_DIR / "claude_error_401_retries.jsonl")

    warnings = of_kind(events, "warning")
    assert warnings[0]["retry"]["attempt"] == 1
    assert warnings[0]["retry"]["max"] == 10
    assert warnings[0]["http_status"] == 401
    assert not of_kind(events, "turn_finished")


def test_claude_killed_mid_turn_gets_a_synthesized_error_finish():
    adapter = get_adapter("claude")
    for line in (SAMPLES_DIR / "claude_error_401_retries.jsonl").read_text().splitlines():
        adapter.parse_line(line)

    events = adapter.finish(-15, "Terminated\n")

    assert kinds(events) == [E, F, X]
    assert events[1].data["status"] == "error"
    assert events[2].data["signal"] == 15


def test_codex_app_server_steer_message_lands_in_the_running_turn():
    events = replay(SAMPLES_DIR / "codex_app_server_steer.txt")

    assert [m["source"] for m in of_kind(events, "user_message")] == ["initial", "steer"]
    assert of_kind(events, "user_message")[1]["text"] == "MIDRUN steer message"
    assert [c["command"] for c in of_kind(events, "tool_call")] == [
        "sleep 3; echo hello-from-tool"
    ] * 2
    assert of_kind(events, "usage")[0]["input_tokens"] == 90
    assert of_kind(events, "turn_finished")[0]["result_text"] == DEFAULT_FINAL_TEXT


def test_gemini_delta_chunks_are_joined_into_blocks():
    events = replay(SAMPLES_DIR / "gemini_stream_json_tool_turn.jsonl")

    assert [t["text"] for t in of_kind(events, "assistant_text")] == [
        "I will run a command.",
        DEFAULT_FINAL_TEXT,
    ]
    assert of_kind(events, "usage")[0]["input_tokens"] == 90
    assert of_kind(events, "usage")[0]["output_tokens"] == 36
    assert events[0].session_id == "61ebc791-4e94-4263-b58d-5f98e941f177"


def test_opencode_turn_ends_at_exit_after_a_stop_step():
    adapter = get_adapter("opencode")
    events = replay(SAMPLES_DIR / "opencode_run_json_tool_turn.jsonl", adapter)

    events += adapter.finish(0, "")

    assert kinds(events)[-2:] == [F, X]
    assert events[-2].data == {
        "status": "success",
        "result_text": DEFAULT_FINAL_TEXT,
        "duration_ms": None,
        "num_turns": None,
    }
    usages = of_kind(events, "usage")
    assert sum(u["cost_usd"] for u in usages) == pytest.approx(0.00051)
    assert of_kind(events, "tool_result")[0]["exit_code"] == 0
    assert events[0].session_id == "ses_e037ac256ffepcLS08Nfk4dcY5"


def test_opencode_error_line_is_fatal():
    adapter = get_adapter("opencode")
    line = {
        "type": "error",
        "timestamp": 1,
        "sessionID": "ses_x",
        "error": {"name": "APIError", "data": {"message": "fake", "statusCode": 400}},
    }

    events = adapter.parse_line(json.dumps(line)) + adapter.finish(1, "")

    assert kinds(events) == [S, E, F, X]
    assert events[1].data == {"message": "fake", "http_status": 400, "fatal": True}
    assert events[2].data["status"] == "error"


GARBAGE = [
    "this is not json",
    '{"type": "assistant", "message": {"content": [{"type": "text", "te',  # truncated
    "[1, 2, 3]",
    "\x00\x01binary",
    '{"type": "result", "usage": "not-a-dict", "is_error": "maybe"}',
    '{"type": "item.completed", "item": null}',
    '{"type": "tool_use", "part": {"state": []}}',
]


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "opencode"])
def test_garbage_lines_become_warnings_not_exceptions(name: str):
    adapter = get_adapter(name)

    events = [event for line in GARBAGE for event in adapter.parse_line(line)]

    assert events
    for line in GARBAGE[:4]:
        assert kinds(adapter.parse_line(line)) == [W]
    assert adapter.parse_line("   \n") == []


def test_stderr_lines_are_warnings():
    events = get_adapter("codex").parse_stderr_line("Reading additional input from stdin...\n")

    assert kinds(events) == [W]
    assert events[0].data["stream"] == "stderr"


# -- request samples replayed against the scripted model server ------------------------------


def load_requests(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLES_DIR / name).read_text().splitlines()]


EXPECTED_DECISIONS = {
    # (protocol, main?, reply kind) per captured request
    "claude_requests_tool_turn.jsonl": [
        (None, False, None),  # HEAD /
        (ANTHROPIC, False, None),  # session title side query
        (ANTHROPIC, True, "shell"),
        (ANTHROPIC, True, "text"),
    ],
    "claude_midrun_requests.jsonl": [
        (None, False, None),
        (ANTHROPIC, True, "shell"),
        # tool_result followed by the injected role:system message: still a tool result
        (ANTHROPIC, True, "text"),
        (ANTHROPIC, True, "text"),
    ],
    "codex_requests_tool_turn.jsonl": [(RESPONSES, True, "shell"), (RESPONSES, True, "text")],
    "gemini_requests_tool_turn.jsonl": [
        (GEMINI, False, None),  # router classifier
        (GEMINI, True, "shell"),
        (GEMINI, True, "text"),
    ],
    "qwen_requests_tool_turn.jsonl": [(CHAT, True, "shell"), (CHAT, True, "text")],
}


def test_every_request_sample_is_covered():
    assert {p.name for p in REQUEST_SAMPLES} == set(EXPECTED_DECISIONS)


@pytest.mark.parametrize("sample", REQUEST_SAMPLES, ids=lambda p: p.name)
def test_default_policy_decides_captured_requests(sample: Path):
    decisions = []
    for request in load_requests(sample.name):
        protocol, main = classify(request["method"], request["path"], request["body"])
        reply = default_reply(protocol, request["body"]).kind if main else None
        decisions.append((protocol, main, reply))

    assert decisions == EXPECTED_DECISIONS[sample.name]


def post(server: ModelServer, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = json.dumps(request["body"]).encode() if request["body"] is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(request["method"], request["path"], body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()  # http.client de-chunks; fails if the terminating chunk is missing
    result = (response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    connection.close()
    return result


def sse_data(payload: bytes) -> list[Any]:
    events = []
    for block in payload.decode().replace("\r\n", "\n").split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line.removeprefix("data: ")))
    return events


@pytest.mark.parametrize("sample", REQUEST_SAMPLES, ids=lambda p: p.name)
def test_model_server_answers_captured_requests(sample: Path, model_server: ModelServer):
    for request, (protocol, main, reply) in zip(
        load_requests(sample.name), EXPECTED_DECISIONS[sample.name], strict=True
    ):
        status, headers, payload = post(model_server, request)

        assert status == 200
        if request["method"] == "HEAD":
            continue
        if not main:
            if protocol == ANTHROPIC:  # the streamed title query
                assert json.loads(
                    "".join(
                        e["delta"]["text"]
                        for e in sse_data(payload)
                        if e["type"] == "content_block_delta"
                    )
                ) == {"title": "Fake title"}
            else:
                assert headers["content-type"] == "application/json"
            continue
        assert headers["content-type"] == "text/event-stream"
        assert headers["transfer-encoding"] == "chunked"
        events = sse_data(payload)
        dumped = json.dumps(events)
        if reply == "shell":
            assert "echo hello-from-tool" in dumped
        else:
            assert DEFAULT_FINAL_TEXT.split()[-1] in dumped
        if protocol == ANTHROPIC:
            assert events[0]["type"] == "message_start"
            assert events[-1]["type"] == "message_stop"
            stop = events[-2]["delta"]["stop_reason"]
            assert stop == ("tool_use" if reply == "shell" else "end_turn")
        elif protocol == RESPONSES:
            assert events[-1]["type"] == "response.completed"
            assert events[-1]["response"]["id"]
            assert events[-1]["response"]["usage"]["input_tokens"] == 30
            item = events[-1]["response"]["output"][0]
            assert item["type"] == ("function_call" if reply == "shell" else "message")
            if reply == "shell":
                assert item["name"] == "exec_command"
                assert json.loads(item["arguments"]) == {"cmd": "echo hello-from-tool"}
        elif protocol == GEMINI:
            parts = events[0]["candidates"][0]["content"]["parts"]
            if reply == "shell":
                assert parts[-1]["functionCall"]["name"] == "run_shell_command"
        elif protocol == CHAT:
            finish = events[-1]["choices"][0]["finish_reason"]
            assert finish == ("tool_calls" if reply == "shell" else "stop")
    assert len(model_server.requests) == len(EXPECTED_DECISIONS[sample.name])
