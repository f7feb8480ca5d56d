"""The `command` harness: any program that speaks ozweb's small JSONL protocol.

See docs/command-harness.md. ozweb writes `{"type": "user", "text": ...}` lines to the
program's stdin (the prompt first, then steering messages) and closes stdin to end the run;
the program prints `text`, `tool_call`, `tool_result`, `error` and `result` lines. Lines that are
not JSON objects are shown as plain assistant text, so any program works, JSON or not.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from .base import (
    Adapter,
    Capabilities,
    EventKind,
    Invocation,
    InvocationRequest,
    NormalizedEvent,
    StdinMode,
    text_of,
)


class CommandAdapter(Adapter):
    name = "command"
    capabilities = Capabilities(mid_run_input=True, resume=True, usage=True, cost=True)

    def __init__(self, command: str | Sequence[str] = ()) -> None:
        super().__init__()
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        self._announced = False
        self._last_text = ""

    def build_invocation(self, request: InvocationRequest) -> Invocation:
        # No MCP config (`mcp` is ignored): the program has the `oz` command and OZWEB_* env.
        if not self.command:
            raise ValueError("the command harness needs a command to run")
        extra_env = {"OZWEB_PROTOCOL": "jsonl-1"}
        if request.model:
            extra_env["OZWEB_MODEL"] = request.model
        if request.instructions:
            extra_env["OZWEB_INSTRUCTIONS"] = request.instructions
        if request.session_id:
            extra_env["OZWEB_SESSION_ID"] = request.session_id
            self._resuming = True
        return Invocation(
            argv=list(self.command),
            env=extra_env,
            stdin_mode=StdinMode.STREAM,
            stdin=self.encode_user_message(request.prompt) or b"",
        )

    def encode_user_message(self, text: str) -> bytes | None:
        self.turn_open = True
        return (json.dumps({"type": "user", "text": text}, ensure_ascii=False) + "\n").encode()

    def interrupt_message(self) -> bytes | None:
        return b'{"type": "interrupt"}\n'

    # -- parsing ------------------------------------------------------------------------

    def _announce(self, obj: Any) -> list[NormalizedEvent]:
        if self._announced:
            return []
        self._announced = True
        session = obj if isinstance(obj, dict) and obj.get("type") == "session" else {}
        self.remember_session(session.get("id"))
        data = {
            "model": session.get("model"),
            "cwd": session.get("cwd"),
            "tools": session.get("tools") or [],
            "resumed": self._resuming,
        }
        return [self.event(EventKind.SESSION_STARTED, data, raw=session or None)]

    def parse_text_line(self, text: str) -> list[NormalizedEvent]:
        events = self._announce(None)
        data = {"text": text, "message_id": None, "raw_output": True}
        return [*events, self.event(EventKind.ASSISTANT_TEXT, data, raw=text)]

    def parse_object(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        events = self._announce(obj)
        match obj.get("type"):
            case "session":
                self.remember_session(obj.get("id"))
            case "text":
                self._last_text = text_of(obj.get("text"))
                data = {"text": self._last_text, "message_id": obj.get("id")}
                events.append(self.event(EventKind.ASSISTANT_TEXT, data, raw=obj))
            case "reasoning":
                data = {"text": text_of(obj.get("text"))}
                events.append(self.event(EventKind.REASONING, data, raw=obj))
            case "tool_call":
                tool_input = obj.get("input")
                events.append(
                    self.tool_call(
                        call_id=str(obj.get("id", "")),
                        name=str(obj.get("name", "")),
                        input=tool_input if isinstance(tool_input, dict) else {"value": tool_input},
                        raw=obj,
                    )
                )
            case "tool_result":
                exit_code = obj.get("exit_code")
                status = obj.get("status") or (
                    "error" if isinstance(exit_code, int) and exit_code != 0 else "success"
                )
                events.append(
                    self.tool_result(
                        call_id=str(obj.get("id", "")),
                        status=status,
                        output=text_of(obj.get("output")),
                        exit_code=exit_code if isinstance(exit_code, int) else None,
                        raw=obj,
                    )
                )
            case "warning":
                data = {"message": text_of(obj.get("message"))}
                events.append(self.event(EventKind.WARNING, data, raw=obj))
            case "error":
                data = {
                    "message": text_of(obj.get("message")),
                    "http_status": None,
                    "fatal": bool(obj.get("fatal", False)),
                }
                events.append(self.event(EventKind.ERROR, data, raw=obj))
            case "result":
                events += self._result(obj)
            case other:
                message = f"unknown command-harness line type {other!r}"
                events.append(self.event(EventKind.WARNING, {"message": message}, raw=obj))
        return events

    def _result(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        events = []
        usage = obj.get("usage")
        if isinstance(usage, dict):
            events.append(
                self.usage(
                    input_tokens=usage.get("input_tokens"),
                    output_tokens=usage.get("output_tokens"),
                    cached_input_tokens=usage.get("cached_input_tokens"),
                    cost_usd=usage.get("cost_usd"),
                    cumulative=False,
                    raw=obj,
                )
            )
        text = obj.get("text")
        result_text = text_of(text) if text is not None else self._last_text
        reported = obj.get("status")
        status = reported if reported in {"error", "interrupted"} else "success"
        events.append(
            self.turn_finished(
                status,
                result_text=result_text,
                duration_ms=obj.get("duration_ms"),
                num_turns=obj.get("num_turns"),
                raw=obj,
            )
        )
        self._last_text = ""
        return events
