"""The adapters' side of approvals: invocation per policy, reading the question, framing the
answer (HARNESSES.md §1.5a; the Codex app-server's approval requests)."""

from __future__ import annotations

import json

from apps.harnesses import ClaudeAdapter, CodexAdapter, InvocationRequest, McpServer
from apps.harnesses.base import ToolKind

MCP = McpServer(url="http://127.0.0.1:8000/mcp/")


def claude_argv(policy: str) -> list[str]:
    request = InvocationRequest(prompt="go", model="", approval_policy=policy, mcp=MCP)
    return ClaudeAdapter().build_invocation(request).argv


def test_claude_skips_permissions_unless_it_should_ask():
    assert "--dangerously-skip-permissions" in claude_argv("never")
    assert "--permission-prompt-tool" not in claude_argv("never")
    asking = claude_argv("ask")
    assert "--dangerously-skip-permissions" not in asking
    assert asking[asking.index("--permission-prompt-tool") + 1] == "stdio"
    assert asking[asking.index("--allowedTools") + 1] == "mcp__ozweb"


def test_claude_reads_can_use_tool_and_answers_in_the_control_protocol():
    adapter = ClaudeAdapter()
    line = {
        "type": "control_request",
        "request_id": "40d4",
        "request": {
            "subtype": "can_use_tool",
            "tool_name": "Edit",
            "input": {"file_path": "/workspace/a.py", "old_string": "a = 1\n",
                      "new_string": "a = 2\n"},
        },
    }  # fmt: skip
    assert adapter.parse_line(json.dumps(line)) == []
    [request] = adapter.take_permission_requests()
    assert adapter.take_permission_requests() == []
    assert (request.request_id, request.tool, request.kind) == ("40d4", "Edit", ToolKind.EDIT)
    assert (
        request.file == "/workspace/a.py" and "-a = 1" in request.diff and "+a = 2" in request.diff
    )

    allow = json.loads(adapter.answer_permission(request, allow=True))
    assert allow == {
        "type": "control_response",
        "response": {
            "subtype": "success",
            "request_id": "40d4",
            "response": {"behavior": "allow", "updatedInput": line["request"]["input"]},
        },
    }
    deny = json.loads(adapter.answer_permission(request, allow=False, message="no"))
    assert deny["response"]["response"] == {"behavior": "deny", "message": "no"}


def test_codex_asks_with_untrusted_and_answers_its_approval_requests():
    adapter = CodexAdapter()
    adapter.build_invocation(InvocationRequest(prompt="go", model="", approval_policy="ask"))
    assert adapter._thread_params["approvalPolicy"] == "untrusted"
    never = CodexAdapter()
    never.build_invocation(InvocationRequest(prompt="go", model=""))
    assert never._thread_params["approvalPolicy"] == "never"

    ask = {
        "method": "item/commandExecution/requestApproval",
        "id": 0,
        "params": {"itemId": "call_1", "command": "/bin/bash -lc 'touch made.txt'"},
    }
    assert adapter.parse_line(json.dumps(ask)) == []
    [request] = adapter.take_permission_requests()
    assert request.command == "touch made.txt" and request.kind == ToolKind.SHELL
    assert json.loads(adapter.answer_permission(request, allow=True)) == {
        "id": 0, "result": {"decision": "accept"},
    }  # fmt: skip
    assert json.loads(adapter.answer_permission(request, allow=False))["result"] == {
        "decision": "decline"
    }


def test_codex_refuses_server_requests_it_cannot_answer_rather_than_hang():
    adapter = CodexAdapter()
    adapter.build_invocation(InvocationRequest(prompt="go", model=""))
    adapter.take_outgoing()
    line = {"method": "item/tool/requestUserInput", "id": 7, "params": {}}
    [warning] = adapter.parse_line(json.dumps(line))
    assert warning.kind == "warning"
    [reply] = adapter.take_outgoing()
    assert json.loads(reply)["id"] == 7 and "error" in json.loads(reply)
