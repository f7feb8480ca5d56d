"""Claude Code (`claude -p`, stream-json in and out). HARNESSES.md §1.

One long-lived process per session: the prompt and every later message are `user` lines on
stdin (they are injected into the running turn), closing stdin ends the process. A later run
continues the conversation with `--resume <session_id>` (same $HOME and cwd). An MCP server is
passed with `--mcp-config ~/.claude/ozweb-mcp.json` (`${OZWEB_TOKEN}` in its header).
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from .base import (
    Adapter,
    Capabilities,
    EventKind,
    Invocation,
    InvocationRequest,
    McpServer,
    NormalizedEvent,
    PermissionRequest,
    StdinMode,
    ToolKind,
    http_status_in,
    text_of,
    tool_kind,
)

MCP_CONFIG_FILE = ".claude/ozweb-mcp.json"  # relative to $HOME, rewritten every run

# Keep the CLI quiet and fast to fail; see HARNESSES.md §1.4 and §1.6.
CLAUDE_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_COST_WARNINGS": "1",
    "IS_SANDBOX": "1",  # allows --dangerously-skip-permissions as root
    "CLAUDE_CODE_MAX_RETRIES": "2",
}


class ClaudeAdapter(Adapter):
    name = "claude"
    capabilities = Capabilities(
        mid_run_input=True, resume=True, usage=True, cost=True, approvals=True
    )

    def __init__(self, *, include_partial_messages: bool = False) -> None:
        super().__init__()
        self.include_partial_messages = include_partial_messages
        self._initialized = False
        self._interrupt_requested = False
        self._error_in_turn = False
        self._previous_total_cost = 0.0
        self._interrupt_seq = 0
        self._stream_message_id: str | None = None
        self._permission_requests: list[PermissionRequest] = []

    def build_invocation(self, request: InvocationRequest) -> Invocation:
        argv = [
            "claude",
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--replay-user-messages",
        ]
        if request.approval_policy == "never":
            argv.append("--dangerously-skip-permissions")
        else:
            # Default permission mode: what it would ask a person comes to us as a
            # `can_use_tool` control request on stdout (HARNESSES.md §1.5a).
            argv += ["--permission-prompt-tool", "stdio"]
            if request.mcp:  # ozweb's own tools are checked by ozweb itself
                argv += ["--allowedTools", f"mcp__{request.mcp.name}"]
        if self.include_partial_messages:
            argv.append("--include-partial-messages")
        if request.model:
            argv += ["--model", request.model]
        if request.session_id:
            argv += ["--resume", request.session_id]
            self._resuming = True
        if request.instructions:
            argv += ["--append-system-prompt", request.instructions]
        home_files = {}
        run_env = dict(CLAUDE_ENV)
        if mcp := request.mcp:
            config = json.dumps(self.mcp_config(mcp), indent=2)
            if request.home:
                home_files[MCP_CONFIG_FILE] = config
                argv += ["--mcp-config", f"{request.home.rstrip('/')}/{MCP_CONFIG_FILE}"]
            else:  # --mcp-config also takes the JSON itself
                argv += ["--mcp-config", config]
            run_env["MCP_TOOL_TIMEOUT"] = str(mcp.tool_timeout_s * 1000)
        return Invocation(
            argv=argv,
            env=run_env,
            home_files=home_files,
            stdin_mode=StdinMode.STREAM,
            stdin=self._user_line(request.prompt),
        )

    def gateway_env(self, *, url: str, token: str, kind: str) -> dict[str, str]:
        if kind != "anthropic":
            return {}
        # The token goes out as x-api-key (HARNESSES.md §1.4).
        return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": token}

    @staticmethod
    def mcp_config(mcp: McpServer) -> dict[str, Any]:
        """`--mcp-config` JSON. Claude Code expands `${VAR}` in it, so the token stays in the
        environment."""
        server = {"type": "http", "url": mcp.url, "headers": {"Authorization": mcp.auth_header}}
        return {"mcpServers": {mcp.name: server}}

    @staticmethod
    def _user_line(text: str) -> bytes:
        line = {"type": "user", "message": {"role": "user", "content": text}}
        return (json.dumps(line, ensure_ascii=False) + "\n").encode()

    def encode_user_message(self, text: str) -> bytes | None:
        self.turn_open = True
        return self._user_line(text)

    def interrupt_message(self) -> bytes | None:
        self._interrupt_requested = True
        self._interrupt_seq += 1
        request = {
            "type": "control_request",
            "request_id": f"ozweb-interrupt-{self._interrupt_seq}",
            "request": {"subtype": "interrupt"},
        }
        return (json.dumps(request) + "\n").encode()

    # -- parsing ------------------------------------------------------------------------

    def parse_object(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        self.remember_session(obj.get("session_id"))
        match obj.get("type"):
            case "system":
                return self._system(obj)
            case "assistant":
                return self._assistant(obj)
            case "user":
                return self._user(obj)
            case "result":
                return self._result(obj)
            case "stream_event":
                return self._stream_event(obj)
            case "control_response":
                response = obj.get("response") or {}
                if response.get("subtype") == "error":
                    message = response.get("error") or "control request failed"
                    return [self.event(EventKind.WARNING, {"message": message}, raw=obj)]
                return []
            case "control_request":
                self._control_request(obj)
                return []
            case _:
                return []  # rate_limit_event, future types: nothing to show

    def _control_request(self, obj: dict[str, Any]) -> None:
        request = obj.get("request") or {}
        if request.get("subtype") != "can_use_tool" or not obj.get("request_id"):
            return
        name = str(request.get("tool_name") or "")
        given = request.get("input")
        tool_input: dict[str, Any] = given if isinstance(given, dict) else {}
        kind = tool_kind(name)
        command = tool_input.get("command") if kind is ToolKind.SHELL else None
        file = tool_input.get("file_path") or tool_input.get("notebook_path")
        self._permission_requests.append(
            PermissionRequest(
                request_id=str(obj["request_id"]),
                tool=name,
                kind=kind,
                input=tool_input,
                command=command if isinstance(command, str) else None,
                file=file if isinstance(file, str) else None,
                diff=_edit_diff(tool_input) if kind is ToolKind.EDIT else None,
                raw=obj,
            )
        )

    def take_permission_requests(self) -> list[PermissionRequest]:
        requests, self._permission_requests = self._permission_requests, []
        return requests

    def answer_permission(
        self, request: PermissionRequest, *, allow: bool, message: str = ""
    ) -> bytes | None:
        answer: dict[str, Any] = (
            {"behavior": "allow", "updatedInput": request.input}
            if allow
            else {"behavior": "deny", "message": message or "Denied."}
        )
        reply = {"subtype": "success", "request_id": request.request_id, "response": answer}
        response = {"type": "control_response", "response": reply}
        return (json.dumps(response, ensure_ascii=False) + "\n").encode()

    def _system(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        subtype = obj.get("subtype")
        if subtype == "init":
            self._error_in_turn = False
            if self._initialized:
                return []  # stdin-streaming mode repeats init at every user turn
            self._initialized = True
            data = {
                "model": obj.get("model"),
                "cwd": obj.get("cwd"),
                "tools": obj.get("tools") or [],
                "mcp_servers": obj.get("mcp_servers") or [],
                "permission_mode": obj.get("permissionMode") or obj.get("permission_mode"),
                "resumed": self._resuming,
                "version": obj.get("claude_code_version"),
            }
            return [self.event(EventKind.SESSION_STARTED, data, raw=obj)]
        if subtype == "api_retry":
            status = obj.get("error_status")
            message = f"API request failed ({status or obj.get('error') or 'unknown'}); retrying"
            retry = {
                "attempt": obj.get("attempt"),
                "max": obj.get("max_retries"),
                "delay_ms": obj.get("retry_delay_ms"),
            }
            data = {"message": message, "retry": retry, "http_status": status}
            return [self.event(EventKind.WARNING, data, raw=obj)]
        return []

    def _assistant(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        message = obj.get("message") or {}
        message_id = message.get("id")
        parent = obj.get("parent_tool_use_id")
        events = []
        if message.get("model") == "<synthetic>":
            # The CLI reports API failures as a fake assistant message (HARNESSES.md §1.6).
            text = text_of(message.get("content"))
            self._error_in_turn = True
            data = {"message": text, "http_status": http_status_in(text), "fatal": True}
            return [self.event(EventKind.ERROR, data, raw=obj)]
        for block in message.get("content") or []:
            block_type = block.get("type")
            if block_type == "text" and block.get("text"):
                data = {"text": block["text"], "message_id": message_id}
                if parent:
                    data["parent_call_id"] = parent
                events.append(self.event(EventKind.ASSISTANT_TEXT, data, raw=obj))
            elif block_type == "thinking" and block.get("thinking"):
                events.append(self.event(EventKind.REASONING, {"text": block["thinking"]}, raw=obj))
            elif block_type in {"tool_use", "server_tool_use", "mcp_tool_use"}:
                extra = {"parent_call_id": parent} if parent else {}
                events.append(
                    self.tool_call(
                        call_id=block.get("id", ""),
                        name=block.get("name", ""),
                        input=block.get("input") or {},
                        raw=obj,
                        **extra,
                    )
                )
        return events

    def _user(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        content = (obj.get("message") or {}).get("content")
        if isinstance(content, str):
            source = "replay" if obj.get("isReplay") else "harness"
            return [
                self.event(EventKind.USER_MESSAGE, {"text": content, "source": source}, raw=obj)
            ]
        events = []
        structured = obj.get("tool_use_result")
        for block in content or []:
            if block.get("type") == "tool_result":
                if isinstance(structured, dict) and structured.get("interrupted"):
                    status = "interrupted"
                elif block.get("is_error"):
                    status = "interrupted" if self._interrupt_requested else "error"
                else:
                    status = "success"
                events.append(
                    self.tool_result(
                        call_id=block.get("tool_use_id", ""),
                        status=status,
                        output=text_of(block.get("content")),
                        raw=obj,
                    )
                )
            elif block.get("type") == "text":
                source = "replay" if obj.get("isReplay") else "harness"
                data = {"text": block.get("text", ""), "source": source}
                events.append(self.event(EventKind.USER_MESSAGE, data, raw=obj))
        return events

    def _result(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        events = []
        usage = obj.get("usage") or {}
        total_cost = obj.get("total_cost_usd")
        cost = None
        if isinstance(total_cost, int | float):
            # total_cost_usd grows over the life of the process; report this turn's share.
            cost = round(max(total_cost - self._previous_total_cost, 0.0), 10)
            self._previous_total_cost = total_cost
        if usage or cost is not None:
            events.append(
                self.usage(
                    input_tokens=usage.get("input_tokens"),
                    output_tokens=usage.get("output_tokens"),
                    cached_input_tokens=usage.get("cache_read_input_tokens"),
                    cost_usd=cost,
                    cumulative=False,
                    raw=obj,
                )
            )
        result = obj.get("result")
        result_text = result if isinstance(result, str) else ""
        if obj.get("is_error"):
            if obj.get("subtype") == "error_during_execution" and self._interrupt_requested:
                status = "interrupted"
            else:
                status = "error"
                if not self._error_in_turn:
                    data = {
                        "message": result_text or str(obj.get("subtype")),
                        "http_status": obj.get("api_error_status"),
                        "fatal": True,
                    }
                    events.append(self.event(EventKind.ERROR, data, raw=obj))
        else:
            status = "success"
        self._interrupt_requested = False
        self._error_in_turn = False
        events.append(
            self.turn_finished(
                status,
                result_text=result_text,
                duration_ms=obj.get("duration_ms"),
                num_turns=obj.get("num_turns"),
                raw=obj,
            )
        )
        return events

    def _stream_event(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        event = obj.get("event") or {}
        if event.get("type") == "message_start":
            self._stream_message_id = (event.get("message") or {}).get("id")
            return []
        if event.get("type") != "content_block_delta":
            return []
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            data = {
                "text": delta.get("text", ""),
                "message_id": self._stream_message_id,
                "index": event.get("index"),
            }
            return [self.event(EventKind.ASSISTANT_TEXT_DELTA, data, raw=obj)]
        if delta.get("type") == "thinking_delta":
            data = {"text": delta.get("thinking", ""), "delta": True}
            return [self.event(EventKind.REASONING, data, raw=obj)]
        return []


def _edit_diff(tool_input: dict[str, Any]) -> str | None:
    """A unified diff of what an Edit / MultiEdit / Write call would change, for the card."""
    path = str(tool_input.get("file_path") or "file")
    if isinstance(tool_input.get("edits"), list):
        pairs = [(e.get("old_string", ""), e.get("new_string", "")) for e in tool_input["edits"]]
    elif "old_string" in tool_input:
        pairs = [(tool_input.get("old_string", ""), tool_input.get("new_string", ""))]
    elif "content" in tool_input:
        pairs = [("", tool_input.get("content", ""))]
    else:
        return None
    chunks = []
    for old, new in pairs:
        lines = difflib.unified_diff(
            str(old).splitlines(keepends=True),
            str(new).splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
        )
        chunks.append("".join(lines))
    return "\n".join(chunks)
