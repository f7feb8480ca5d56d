"""OpenAI Codex CLI, driven as `codex app-server` (JSON-RPC over stdio). HARNESSES.md §2.

The adapter runs the handshake itself: `initialize`, `initialized`, then `thread/start` (or
`thread/resume` with the session to continue); when the thread's id comes back it starts the
turn with the prompt. A message written while a turn runs is a `turn/steer` (it reaches the
model on its next request, inside the same turn); one written between turns starts the next
turn in the same process. Closing stdin ends the process.

Codex 0.169 ignores `OPENAI_BASE_URL`; when the agent environment sets it, the adapter writes a
custom model provider into `~/.codex/config.toml` instead (§2.4). An MCP server goes in the same
file (`[mcp_servers.<name>]`, streamable HTTP, `bearer_token_env_var`). Codex offers its tools to
the model as a Responses-API `namespace` tool named `mcp__<name>` holding plain function tools,
and expects `function_call` items with `namespace: "mcp__<name>"` and the bare tool name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import (
    Adapter,
    Capabilities,
    EventKind,
    Invocation,
    InvocationRequest,
    NormalizedEvent,
    PermissionRequest,
    StdinMode,
    ToolKind,
    http_status_in,
    shell_script_of,
    text_of,
)

_SHELL_WRAPPER = re.compile(r"^(?:/\S*/)?(?:ba|z)?sh -l?c '(.*)'$", re.DOTALL)


def unwrap_shell(command: Any) -> str:
    """`/bin/bash -lc 'echo hi'` → `echo hi` (codex reports the wrapped command)."""
    if isinstance(command, list):
        return shell_script_of(command)
    text = str(command or "")
    match = _SHELL_WRAPPER.match(text)
    if match and "'" not in match.group(1):
        return match.group(1)
    return text


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, ensure_ascii=False) + "\n").encode()


class CodexAdapter(Adapter):
    name = "codex"
    capabilities = Capabilities(
        mid_run_input=True, resume=True, usage=True, cost=False, approvals=True
    )

    provider_id = "ozweb"

    def __init__(self) -> None:
        super().__init__()
        self._last_agent_text = ""
        self._user_messages_seen = 0
        self._token_usage: dict[str, Any] = {}
        # The JSON-RPC client side of app-server.
        self._next_id = 0
        self._outgoing: list[bytes] = []
        self._requests: dict[int, str] = {}  # id → method, for the answers
        self._queued_inputs: list[str] = []  # prompts waiting for the thread id
        self._turn_id: str | None = None
        self._turn_running = False
        self._thread_params: dict[str, Any] = {}
        self._permission_requests: list[PermissionRequest] = []
        self._file_changes: dict[str, list[dict[str, Any]]] = {}  # item id → its changes

    def build_invocation(self, request: InvocationRequest) -> Invocation:
        env = request.env
        self._thread_params = {
            # "untrusted": every command but codex's known-safe reads asks first, as an
            # `item/commandExecution/requestApproval` request to us (so do file changes).
            "approvalPolicy": "never" if request.approval_policy == "never" else "untrusted",
            "sandbox": "danger-full-access",
            **({"model": request.model} if request.model else {}),
            **({"cwd": env["OZWEB_WORKSPACE"]} if env.get("OZWEB_WORKSPACE") else {}),
        }
        handshake = [
            self._request("initialize", {"clientInfo": {"name": "ozweb", "version": "1"}}),
            self._notify("initialized"),
        ]
        if request.session_id:
            self._resuming = True
            params = {"threadId": request.session_id, **self._thread_params}
            handshake.append(self._request("thread/resume", params))
        else:
            handshake.append(self._request("thread/start", self._thread_params))
        self._queued_inputs.append(request.prompt)
        home_files = {".codex/config.toml": self.config_toml(request)}
        if request.instructions:
            home_files[".codex/AGENTS.md"] = request.instructions  # global instructions file
        return Invocation(
            argv=["codex", "app-server"],
            home_files=home_files,
            stdin_mode=StdinMode.STREAM,
            stdin=b"".join(handshake),
        )

    # -- the JSON-RPC client ------------------------------------------------------------

    def _request(self, method: str, params: dict[str, Any]) -> bytes:
        self._next_id += 1
        self._requests[self._next_id] = method
        return _line({"id": self._next_id, "method": method, "params": params})

    def _notify(self, method: str) -> bytes:
        return _line({"method": method})

    def take_outgoing(self) -> list[bytes]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def encode_user_message(self, text: str) -> bytes | None:
        if self.session_id is None:  # the thread is not there yet: start with it
            self._queued_inputs.append(text)
            return b""
        if self._turn_running and self._turn_id:
            return self._request(
                "turn/steer",
                {
                    "threadId": self.session_id,
                    "expectedTurnId": self._turn_id,
                    "input": [{"type": "text", "text": text}],
                },
            )
        return self._start_turn(text)

    def interrupt_message(self) -> bytes | None:
        if not (self._turn_running and self._turn_id and self.session_id):
            return None
        return self._request(
            "turn/interrupt", {"threadId": self.session_id, "turnId": self._turn_id}
        )

    def _start_turn(self, text: str) -> bytes:
        self._turn_running = True
        self.turn_open = True
        return self._request(
            "turn/start",
            {"threadId": self.session_id, "input": [{"type": "text", "text": text}]},
        )

    def _answer(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        """A response to one of our requests."""
        request_id = obj.get("id")
        method = self._requests.pop(request_id, None) if isinstance(request_id, int) else None
        if "error" in obj:
            message = text_of((obj.get("error") or {}).get("message")) or str(obj.get("error"))
            fatal = method in ("initialize", "thread/start", "thread/resume", "turn/start")
            events = [
                self.event(
                    EventKind.ERROR,
                    {"message": f"{method or 'request'}: {message}", "http_status": None,
                     "fatal": fatal},
                    raw=obj,
                )
            ]  # fmt: skip
            if fatal:  # nothing will run: end the turn so the run ends
                self._turn_running = False
                events.append(self.turn_finished("error", result_text="", raw=obj))
            return events
        result = obj.get("result") or {}
        if method in ("thread/start", "thread/resume"):
            thread = result.get("thread") or {}
            self.remember_session(thread.get("id"))
            events = [
                self.event(
                    EventKind.SESSION_STARTED,
                    {"model": result.get("model"), "cwd": result.get("cwd"), "tools": [],
                     "resumed": self._resuming},
                    raw=obj,
                )
            ]  # fmt: skip
            if self._queued_inputs:
                first, *rest = self._queued_inputs
                self._queued_inputs = []
                self._outgoing.append(self._start_turn("\n\n".join([first, *rest])))
            return events
        if method == "turn/start":
            self._turn_id = (result.get("turn") or {}).get("id") or self._turn_id
        return []

    def gateway_env(self, *, url: str, token: str, kind: str) -> dict[str, str]:
        # Written into config.toml as a custom provider (Responses API), key from the env.
        return {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": token} if kind == "openai" else {}

    def config_toml(self, request: InvocationRequest) -> str:
        lines = ["# Written by ozweb for this run.", "check_for_update_on_startup = false"]
        if request.model:
            lines.append(f"model = {_toml_string(request.model)}")
        env = request.env
        base_url = env.get("OPENAI_BASE_URL")
        if base_url:
            key_var = next(
                (name for name in ("OPENAI_API_KEY", "CODEX_API_KEY") if name in env),
                "OPENAI_API_KEY",
            )
            lines += [
                f"model_provider = {_toml_string(self.provider_id)}",
                "",
                f"[model_providers.{self.provider_id}]",
                'name = "ozweb"',
                f"base_url = {_toml_string(base_url)}",
                f"env_key = {_toml_string(key_var)}",
                'wire_api = "responses"',
                "request_max_retries = 1",
                "stream_max_retries = 1",
            ]
        if mcp := request.mcp:
            lines += [
                "",
                f"[mcp_servers.{mcp.name}]",
                f"url = {_toml_string(mcp.url)}",
                f"bearer_token_env_var = {_toml_string(mcp.token_env)}",
                "startup_timeout_sec = 30",
                f"tool_timeout_sec = {mcp.tool_timeout_s}",
            ]
        return "\n".join(lines) + "\n"

    # -- parsing: answers to our requests and notifications (§2.3) ----------------------

    def take_permission_requests(self) -> list[PermissionRequest]:
        requests, self._permission_requests = self._permission_requests, []
        return requests

    def answer_permission(
        self, request: PermissionRequest, *, allow: bool, message: str = ""
    ) -> bytes | None:
        # "decline": the command is not run and the turn goes on (item status "declined").
        decision = "accept" if allow else "decline"
        return _line({"id": (request.raw or {}).get("id"), "result": {"decision": decision}})

    def _server_request(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        """A request from app-server to us; it waits for the answer."""
        params = obj.get("params") or {}
        method = obj.get("method")
        if method == "item/commandExecution/requestApproval":
            command = unwrap_shell(params.get("command"))
            self._permission_requests.append(
                PermissionRequest(
                    request_id=str(obj["id"]),
                    tool="commandExecution",
                    kind=ToolKind.SHELL,
                    input={"command": command, "cwd": params.get("cwd")},
                    command=command,
                    raw=obj,
                )
            )
            return []
        if method == "item/fileChange/requestApproval":
            changes = self._file_changes.get(str(params.get("itemId")), [])
            paths = [str(c.get("path")) for c in changes if c.get("path")]
            self._permission_requests.append(
                PermissionRequest(
                    request_id=str(obj["id"]),
                    tool="fileChange",
                    kind=ToolKind.EDIT,
                    input={"changes": changes, "reason": params.get("reason")},
                    file=", ".join(paths) or None,
                    diff="\n".join(str(c.get("diff") or "") for c in changes) or None,
                    raw=obj,
                )
            )
            return []
        # Anything else we cannot answer for a person: refuse at once rather than hang.
        error = {"code": -32601, "message": f"ozweb does not answer {method}"}
        self._outgoing.append(_line({"id": obj.get("id"), "error": error}))
        return [self.event(EventKind.WARNING, {"message": f"refused {method}"}, raw=obj)]

    def parse_object(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        if "method" in obj and "id" in obj:
            return self._server_request(obj)
        if "method" in obj:
            return self._notification(obj)
        if "id" in obj:
            return self._answer(obj)
        return []

    def _notification(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        params = obj.get("params") or {}
        item = params.get("item") or {}
        match obj.get("method"):
            case "thread/started":
                if self.session_id is not None:
                    return []  # already announced by the thread/start answer
                self.remember_session((params.get("thread") or {}).get("id"))
                data: dict[str, Any] = {
                    "model": None,
                    "cwd": None,
                    "tools": [],
                    "resumed": self._resuming,
                }
                return [self.event(EventKind.SESSION_STARTED, data, raw=obj)]
            case "turn/started":
                self.turn_open = True
                self._turn_running = True
                self._turn_id = (params.get("turn") or {}).get("id") or self._turn_id
                self._last_agent_text = ""
                return []
            case "item/started" if item.get("type") == "mcpToolCall":
                name = f"mcp__{item.get('server', '')}__{item.get('tool', '')}"
                return [
                    self.tool_call(
                        call_id=item.get("id", ""),
                        name=name,
                        input=item.get("arguments") or {},
                        kind=ToolKind.MCP,
                        command=None,
                        raw=obj,
                    )
                ]
            case "item/completed" if item.get("type") == "mcpToolCall":
                error = item.get("error")
                output = text_of(error.get("message") if isinstance(error, dict) else error)
                if not error:
                    result = item.get("result") or {}
                    output = text_of(result.get("content") if isinstance(result, dict) else result)
                return [
                    self.tool_result(
                        call_id=item.get("id", ""),
                        status="error" if error else "success",
                        output=output,
                        exit_code=None,
                        raw=obj,
                    )
                ]
            case "item/started" if item.get("type") == "userMessage":
                source = "steer" if self._user_messages_seen else "initial"
                self._user_messages_seen += 1
                text = text_of(item.get("content"))
                return [
                    self.event(EventKind.USER_MESSAGE, {"text": text, "source": source}, raw=obj)
                ]
            case "item/started" if item.get("type") == "commandExecution":
                return [
                    self.tool_call(
                        call_id=item.get("id", ""),
                        name="commandExecution",
                        input={"command": item.get("command")},
                        kind=ToolKind.SHELL,
                        command=unwrap_shell(item.get("command")),
                        raw=obj,
                    )
                ]
            case "item/started" if item.get("type") == "fileChange":
                self._file_changes[str(item.get("id"))] = list(item.get("changes") or [])
                return []
            case "item/completed" if item.get("type") == "commandExecution":
                exit_code = item.get("exitCode")
                ok = item.get("status") == "completed" and exit_code in (0, None)
                declined = item.get("status") == "declined"
                return [
                    self.tool_result(
                        call_id=item.get("id", ""),
                        status="success" if ok else "error",
                        output=item.get("aggregatedOutput") or ("Declined." if declined else ""),
                        exit_code=exit_code,
                        raw=obj,
                    )
                ]
            case "item/completed" if item.get("type") == "agentMessage":
                self._last_agent_text = item.get("text", "")
                data = {"text": self._last_agent_text, "message_id": item.get("id")}
                return [self.event(EventKind.ASSISTANT_TEXT, data, raw=obj)]
            case "item/completed" if item.get("type") == "reasoning":
                text = text_of(item.get("summary") or item.get("text"))
                return [self.event(EventKind.REASONING, {"text": text}, raw=obj)]
            case "item/agentMessage/delta":
                data = {"text": params.get("delta", ""), "message_id": params.get("itemId")}
                return [self.event(EventKind.ASSISTANT_TEXT_DELTA, data, raw=obj)]
            case "thread/tokenUsage/updated":
                self._token_usage = (params.get("tokenUsage") or {}).get("total") or {}
                return []
            case "turn/completed":
                self._turn_running = False
                return self._turn_completed(obj, params.get("turn") or {})
            case "warning" | "configWarning":
                message = params.get("message") or params.get("summary") or ""
                return [self.event(EventKind.WARNING, {"message": message}, raw=obj)]
            case "error":
                message = text_of((params.get("error") or {}).get("message") or params)
                data = {"message": message, "http_status": http_status_in(message), "fatal": False}
                return [self.event(EventKind.ERROR, data, raw=obj)]
            case _:
                return []  # responses to our requests, rate limits, status changes

    def _turn_completed(self, obj: dict[str, Any], turn: dict[str, Any]) -> list[NormalizedEvent]:
        events = []
        if self._token_usage:
            events.append(
                self.usage(
                    input_tokens=self._token_usage.get("inputTokens"),
                    output_tokens=self._token_usage.get("outputTokens"),
                    cached_input_tokens=self._token_usage.get("cachedInputTokens"),
                    cost_usd=None,
                    cumulative=True,
                    raw=obj,
                )
            )
        status = {"completed": "success", "interrupted": "interrupted"}.get(
            turn.get("status", ""), "error"
        )
        if status == "error":
            message = text_of((turn.get("error") or {}).get("message")) or "turn failed"
            data = {"message": message, "http_status": http_status_in(message), "fatal": True}
            events.append(self.event(EventKind.ERROR, data, raw=obj))
        events.append(
            self.turn_finished(
                status,
                result_text=self._last_agent_text,
                duration_ms=turn.get("durationMs"),
                raw=obj,
            )
        )
        return events
