"""opencode (`opencode run --format json`). HARNESSES.md §4.

One process per turn; follow-ups use `-s <sessionID>`. opencode prints no session-start and no
final result: the session id is on every line, and the turn ends when the process exits after a
`step_finish` with reason `stop`. Tool calls are printed once, completed, so each `tool_use`
line becomes a `tool_call` plus its `tool_result`. An MCP server goes in the config
(`mcp.<name>`, `type: remote`, `{env:OZWEB_TOKEN}` in its header); its tools are named
`<server>_<tool>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import (
    Adapter,
    Capabilities,
    EventKind,
    Invocation,
    InvocationRequest,
    NormalizedEvent,
    ToolKind,
    text_of,
)

OPENCODE_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
}


class OpencodeAdapter(Adapter):
    name = "opencode"
    capabilities = Capabilities(mid_run_input=False, resume=True, usage=True, cost=True)

    def __init__(self) -> None:
        super().__init__()
        self._announced = False
        self._last_reason: str | None = None
        self._last_text = ""
        self._failed = False
        self._mcp_prefixes: tuple[str, ...] = ()

    def build_invocation(self, request: InvocationRequest) -> Invocation:
        provider, options = self._provider(request.env)
        model = request.model
        if model and "/" not in model:
            model = f"{provider}/{model}"
        config: dict[str, Any] = {
            "permission": {"*": "allow"},
            "autoupdate": False,
            "share": "disabled",
        }
        if model:
            config["model"] = model
            config["small_model"] = model
        if options:
            config["provider"] = {provider: {"options": options}}
        if mcp := request.mcp:
            config["mcp"] = {
                mcp.name: {
                    "type": "remote",
                    "url": mcp.url,
                    "headers": {"Authorization": f"Bearer {{env:{mcp.token_env}}}"},
                    "oauth": False,
                    "enabled": True,
                }
            }
            self._mcp_prefixes = (f"{mcp.name}_",)
        argv = ["opencode", "run", "--format", "json"]
        if model:
            argv += ["-m", model]
        if request.session_id:
            argv += ["-s", request.session_id]
            self._resuming = True
        argv.append(request.prompt)
        home_files = {}
        if request.instructions:
            home_files[".config/opencode/AGENTS.md"] = request.instructions  # global rules file
        return Invocation(
            argv=argv,
            env={**OPENCODE_ENV, "OPENCODE_CONFIG_CONTENT": json.dumps(config)},
            home_files=home_files,
        )

    def gateway_env(self, *, url: str, token: str, kind: str) -> dict[str, str]:
        # Its bundled anthropic or openai provider, pointed at the gateway by `_provider`.
        if kind == "anthropic":
            return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": token}
        if kind == "openai":
            return {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": token}
        return {}

    @staticmethod
    def _provider(env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """Point opencode's bundled provider at the agent's endpoint. Keys stay in the
        environment: opencode substitutes `{env:NAME}` in its config."""
        if "ANTHROPIC_BASE_URL" in env or "ANTHROPIC_API_KEY" in env:
            options = {}
            if base := env.get("ANTHROPIC_BASE_URL"):
                base = base.rstrip("/")
                options["baseURL"] = base if base.endswith("/v1") else f"{base}/v1"
            if "ANTHROPIC_API_KEY" in env:
                options["apiKey"] = "{env:ANTHROPIC_API_KEY}"
            return "anthropic", options
        options = {}
        if base := env.get("OPENAI_BASE_URL"):
            options["baseURL"] = base
        if "OPENAI_API_KEY" in env:
            options["apiKey"] = "{env:OPENAI_API_KEY}"
        return "openai", options

    def parse_object(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        events = []
        self.remember_session(obj.get("sessionID"))
        if self.session_id and not self._announced:
            self._announced = True
            data: dict[str, Any] = {
                "model": None,
                "cwd": None,
                "tools": [],
                "resumed": self._resuming,
            }
            events.append(self.event(EventKind.SESSION_STARTED, data))
        part = obj.get("part") or {}
        match obj.get("type"):
            case "text":
                self._last_text = part.get("text", "")
                data = {"text": self._last_text, "message_id": part.get("messageID")}
                events.append(self.event(EventKind.ASSISTANT_TEXT, data, raw=obj))
            case "reasoning":
                events.append(
                    self.event(EventKind.REASONING, {"text": part.get("text", "")}, raw=obj)
                )
            case "tool_use":
                events += self._tool(part, obj)
            case "step_finish":
                self._last_reason = part.get("reason")
                tokens = part.get("tokens") or {}
                events.append(
                    self.usage(
                        input_tokens=tokens.get("input"),
                        output_tokens=tokens.get("output"),
                        cached_input_tokens=(tokens.get("cache") or {}).get("read"),
                        cost_usd=part.get("cost"),
                        cumulative=False,  # per step: sum them
                        raw=obj,
                    )
                )
            case "error":
                self._failed = True
                error = obj.get("error") or {}
                detail = error.get("data") or {}
                message = detail.get("message") or error.get("name") or "opencode error"
                data = {"message": message, "http_status": detail.get("statusCode"), "fatal": True}
                events.append(self.event(EventKind.ERROR, data, raw=obj))
        return events

    def _tool(self, part: dict[str, Any], obj: dict[str, Any]) -> list[NormalizedEvent]:
        state: dict[str, Any] = part.get("state") or {}
        call_id = part.get("callID") or part.get("id") or ""
        name = part.get("tool", "")
        call = self.tool_call(
            call_id=call_id,
            name=name,
            input=state.get("input") or {},
            kind=ToolKind.MCP if name.startswith(self._mcp_prefixes) else None,
            raw=obj,
        )
        metadata = state.get("metadata") or {}
        exit_code = metadata.get("exit")
        status = {"completed": "success", "error": "error"}.get(state.get("status", ""), "success")
        if status == "success" and isinstance(exit_code, int) and exit_code != 0:
            status = "error"
        output = state.get("output")
        if output is None:
            output = state.get("error", "")
        result = self.tool_result(
            call_id=call_id, status=status, output=text_of(output), exit_code=exit_code, raw=obj
        )
        return [call, result]

    def finish_turn(self, exit_code: int | None, stderr_tail: str) -> list[NormalizedEvent]:
        if not self.turn_open:
            return []
        if exit_code == 0 and not self._failed and self._last_reason == "stop":
            return [self.turn_finished("success", result_text=self._last_text)]
        if self._failed:
            return [self.turn_finished("error", result_text=self._last_text)]
        return super().finish_turn(exit_code, stderr_tail)
