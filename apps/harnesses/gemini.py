"""Google Gemini CLI (`gemini -p --output-format stream-json`). HARNESSES.md §3.

One process per turn; no mid-run input in `-p` mode. Follow-ups resume with `--resume <id>`
(the CLI also accepts `latest` or an index). With `GOOGLE_GEMINI_BASE_URL` set the CLI picks an
auth type that headless mode rejects (exit 41), so `~/.gemini/settings.json` pins
`gemini-api-key` auth. An MCP server goes in the same file (`mcpServers.<name>` with `httpUrl`;
the CLI expands `${VAR}` in settings, so the header names the token variable). Its tools reach
the model as `mcp_<server>_<tool>`.
"""

from __future__ import annotations

import json
from typing import Any

from .base import (
    Adapter,
    Capabilities,
    EventKind,
    Invocation,
    InvocationRequest,
    NormalizedEvent,
    text_of,
)


class GeminiAdapter(Adapter):
    name = "gemini"
    capabilities = Capabilities(mid_run_input=False, resume=True, usage=True, cost=False)

    def __init__(self) -> None:
        super().__init__()
        self._text_chunks: list[str] = []
        self._last_text = ""

    def build_invocation(self, request: InvocationRequest) -> Invocation:
        argv = [
            "gemini",
            "-p",
            request.prompt,
            "--output-format",
            "stream-json",
            "--yolo",
            "--skip-trust",
        ]
        if request.model:
            argv += ["-m", request.model]  # an explicit model also skips the router side call
        if request.session_id:
            argv += ["--resume", request.session_id]
            self._resuming = True
        settings: dict[str, Any] = {
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "privacy": {"usageStatisticsEnabled": False},
        }
        if mcp := request.mcp:
            settings["mcpServers"] = {
                mcp.name: {
                    "httpUrl": mcp.url,
                    "headers": {"Authorization": mcp.auth_header},
                    "timeout": mcp.tool_timeout_s * 1000,
                    "trust": True,
                }
            }
        home_files = {".gemini/settings.json": json.dumps(settings, indent=2)}
        if request.instructions:
            home_files[".gemini/GEMINI.md"] = request.instructions  # global context file
        return Invocation(argv=argv, home_files=home_files)

    def gateway_env(self, *, url: str, token: str, kind: str) -> dict[str, str]:
        # Sent as x-goog-api-key; settings.json pins the api-key auth (HARNESSES.md §3.4).
        return {"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": token} if kind == "gemini" else {}

    def parse_object(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        kind = obj.get("type")
        if kind == "message" and obj.get("role") == "assistant":
            text = text_of(obj.get("content"))
            if obj.get("delta"):
                self._text_chunks.append(text)
                data: dict[str, Any] = {
                    "text": text,
                    "message_id": None,
                    "index": len(self._text_chunks) - 1,
                }
                return [self.event(EventKind.ASSISTANT_TEXT_DELTA, data, raw=obj)]
            events = self._flush_text()
            self._last_text = text
            data = {"text": text, "message_id": None}
            return [*events, self.event(EventKind.ASSISTANT_TEXT, data, raw=obj)]
        events = self._flush_text()
        match kind:
            case "init":
                self.remember_session(obj.get("session_id"))
                data = {
                    "model": obj.get("model"),
                    "cwd": None,
                    "tools": [],
                    "resumed": self._resuming,
                }
                events.append(self.event(EventKind.SESSION_STARTED, data, raw=obj))
            case "message":
                data = {"text": text_of(obj.get("content")), "source": "initial"}
                events.append(self.event(EventKind.USER_MESSAGE, data, raw=obj))
            case "tool_use":
                events.append(
                    self.tool_call(
                        call_id=obj.get("tool_id", ""),
                        name=obj.get("tool_name", ""),
                        input=obj.get("parameters") or {},
                        raw=obj,
                    )
                )
            case "tool_result":
                error = obj.get("error") or {}
                output = obj.get("output")
                if output is None:
                    output = error.get("message", "")
                status = "success" if obj.get("status") == "success" else "error"
                events.append(
                    self.tool_result(
                        call_id=obj.get("tool_id", ""),
                        status=status,
                        output=text_of(output),
                        raw=obj,
                    )
                )
            case "error":
                message = obj.get("message", "")
                if obj.get("severity") == "warning":
                    events.append(self.event(EventKind.WARNING, {"message": message}, raw=obj))
                else:
                    data = {"message": message, "http_status": None, "fatal": False}
                    events.append(self.event(EventKind.ERROR, data, raw=obj))
            case "result":
                events += self._result(obj)
        return events

    def _flush_text(self) -> list[NormalizedEvent]:
        """Streamed chunks end at the next non-message event: emit them as one block."""
        if not self._text_chunks:
            return []
        text = "".join(self._text_chunks)
        self._text_chunks = []
        self._last_text = text
        return [self.event(EventKind.ASSISTANT_TEXT, {"text": text, "message_id": None})]

    def _result(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        events = []
        stats = obj.get("stats") or {}
        if stats:
            events.append(
                self.usage(
                    input_tokens=stats.get("input_tokens"),
                    output_tokens=stats.get("output_tokens"),
                    cached_input_tokens=stats.get("cached"),
                    cost_usd=None,
                    cumulative=False,
                    raw=obj,
                )
            )
        if obj.get("status") == "success":
            status = "success"
        else:
            status = "error"
            error = obj.get("error") or {}
            message = error.get("message") or "gemini reported an error"
            data = {"message": message, "http_status": _gemini_status(message), "fatal": True}
            events.append(self.event(EventKind.ERROR, data, raw=obj))
        events.append(
            self.turn_finished(
                status,
                result_text=self._last_text,
                duration_ms=stats.get("duration_ms"),
                raw=obj,
            )
        )
        return events

    def finish(self, exit_code: int | None, stderr_tail: str = "") -> list[NormalizedEvent]:
        return self._flush_text() + super().finish(exit_code, stderr_tail)


def _gemini_status(message: str) -> int | None:
    # '[API Error: {"error":{"code":400,...}}]'
    start = message.find("{")
    if start < 0:
        return None
    try:
        payload = json.loads(message[start : message.rfind("}") + 1])
    except ValueError:
        return None
    code = (payload.get("error") or {}).get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, int) else None
