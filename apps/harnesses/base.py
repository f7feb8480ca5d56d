"""Harness adapter contract: how ozweb starts a coding-agent CLI and reads its output.

An adapter knows one harness (claude, codex, ...). For each run the executor creates a fresh
adapter, gives it an `InvocationRequest` (prompt, model, session to resume, ...) and gets back
an `Invocation` (argv, environment, files for the container home, how stdin is used), starts
the process, and feeds every stdout line to `parse_line`, which returns normalized events
(HARNESSES.md §11). When the process ends, `finish` adds the closing events.

Adapters are pure Python (no Django) and never raise on bad input: a line they cannot read
becomes a `warning` event carrying the raw text.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class EventKind(StrEnum):
    SESSION_STARTED = "session_started"
    USER_MESSAGE = "user_message"
    ASSISTANT_TEXT = "assistant_text"
    ASSISTANT_TEXT_DELTA = "assistant_text_delta"
    REASONING = "reasoning"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    USAGE = "usage"
    WARNING = "warning"
    ERROR = "error"
    TURN_FINISHED = "turn_finished"
    PROCESS_EXITED = "process_exited"


class ToolKind(StrEnum):
    SHELL = "shell"
    EDIT = "edit"
    READ = "read"
    SEARCH = "search"
    WEB = "web"
    MCP = "mcp"
    OTHER = "other"


class StdinMode(StrEnum):
    """How the executor treats the process's stdin."""

    CLOSED = "closed"  # nothing to send: connect /dev/null (the prompt is in argv)
    STREAM = "stream"  # write `Invocation.stdin` first, keep stdin open for steering, close to end


@dataclass(frozen=True)
class NormalizedEvent:
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    raw: Any = None  # the parsed JSON line (or the raw text when it was not JSON)
    session_id: str | None = None  # harness-native session id, when known


@dataclass(frozen=True)
class Capabilities:
    mid_run_input: bool  # messages written to stdin reach the running turn
    resume: bool  # a new process can continue a previous session
    usage: bool  # reports token counts
    cost: bool  # reports cost in USD
    # Can ask ozweb before running a tool (Agent.approval_policy "ask"/"ask_writes").
    approvals: bool = False


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the container environment
    # Files to create before start, keyed by path relative to the container user's $HOME.
    home_files: dict[str, str] = field(default_factory=dict)
    stdin_mode: StdinMode = StdinMode.CLOSED
    stdin: bytes = b""  # written first when stdin_mode is STREAM (e.g. the prompt line)


@dataclass(frozen=True)
class McpServer:
    """An MCP server (streamable HTTP) for the harness to connect to: ozweb's own, at
    `{OZWEB_URL}/mcp/`. The bearer token stays in the environment variable `token_env`; the
    config the adapter writes only refers to it (every supported harness expands variables)."""

    url: str
    name: str = "ozweb"
    token_env: str = "OZWEB_TOKEN"  # noqa: S105 -- the variable's name, not a secret
    # A blocking `delegate(wait=true)` may take its whole timeout (600 s by default).
    tool_timeout_s: int = 900

    @property
    def auth_header(self) -> str:
        """`Authorization` header value in `${VAR}` form (Claude Code, Gemini CLI)."""
        return f"Bearer ${{{self.token_env}}}"


@dataclass(frozen=True, kw_only=True)
class InvocationRequest:
    """What one run asks of its harness; `Adapter.build_invocation` turns it into argv, env
    and home files."""

    prompt: str
    model: str  # "" for the harness's default
    session_id: str | None = None  # the harness session to resume
    instructions: str = ""  # appended to the harness's system prompt / global rules
    # The agent's environment (API keys, base URLs), which the adapter may translate into
    # harness config.
    env: Mapping[str, str] = field(default_factory=dict)
    mcp: McpServer | None = None  # a server to connect to, written into the native config
    home: str | None = None  # the absolute $HOME the process will see, for paths in argv
    # Agent.approval_policy: "never" runs every tool unasked; otherwise the harness asks
    # (`PermissionRequest`) and waits for `Adapter.answer_permission`.
    approval_policy: str = "never"


@dataclass(frozen=True)
class PermissionRequest:
    """The harness asks before running a tool (HARNESSES.md §1.5a; Codex app-server
    approval requests); the executor answers it with `Adapter.answer_permission`."""

    request_id: str
    tool: str
    kind: ToolKind
    input: dict[str, Any]
    command: str | None = None  # a shell call's command line
    file: str | None = None  # an edit's file
    diff: str | None = None  # an edit's change, as a unified diff when known
    raw: Any = None

    @property
    def similar_key(self) -> str:
        """What "approve all like this for this run" matches: the tool, and for a command its
        program (`touch`), for an edit its file."""
        if self.command:
            words = self.command.split()
            return f"{self.tool}:{words[0] if words else ''}"[:300]
        if self.file:
            return f"{self.tool}:{self.file}"[:300]
        return self.tool[:300]


# Where agents put their own model endpoint and keys. With a provider, the gateway replaces them
# (the real key never enters the sandbox): they are taken out of the run's environment.
MODEL_ENV_VARIABLES = (
    "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_BASE_URL", "OPENAI_API_KEY", "CODEX_API_KEY",
    "GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
)  # fmt: skip


# Native tool names → ToolKind. Lower-cased lookup; MCP tools are recognised by prefix.
_TOOL_KINDS: dict[str, ToolKind] = {
    **dict.fromkeys(
        [
            "bash",
            "shell",
            "run_shell_command",
            "exec_command",
            "shell_command",
            "shelltoolcall",
            "developer__shell",
            "local_shell",
        ],
        ToolKind.SHELL,
    ),
    **dict.fromkeys(
        [
            "edit",
            "write",
            "multiedit",
            "notebookedit",
            "replace",
            "write_file",
            "apply_patch",
            "patch",
            "edittoolcall",
        ],
        ToolKind.EDIT,
    ),
    **dict.fromkeys(
        ["read", "read_file", "read_many_files", "view", "view_image", "readtoolcall"],
        ToolKind.READ,
    ),
    **dict.fromkeys(
        ["grep", "glob", "ls", "list", "list_directory", "grep_search", "search_file_content"],
        ToolKind.SEARCH,
    ),
    **dict.fromkeys(
        ["webfetch", "websearch", "web_fetch", "web_search", "google_web_search", "fetch"],
        ToolKind.WEB,
    ),
}


def tool_kind(name: str) -> ToolKind:
    lowered = name.lower()
    # claude and codex: mcp__<server>__<tool>; gemini: mcp_<server>_<tool>.
    if lowered.startswith("mcp_") or lowered == "mcp":
        return ToolKind.MCP
    return _TOOL_KINDS.get(lowered, ToolKind.OTHER)


_HTTP_STATUS = re.compile(r"\b(?:status|API Error:)\s*:?\s*([1-5]\d\d)\b")


def http_status_in(message: str) -> int | None:
    """Best-effort HTTP status from an error message such as 'unexpected status 401 ...'."""
    match = _HTTP_STATUS.search(message)
    return int(match.group(1)) if match else None


def text_of(content: Any) -> str:
    """Text from a string or a list of content blocks ({type: text, text: ...})."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(block) for block in content)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return content["text"]
        return json.dumps(content, ensure_ascii=False)
    return str(content)


MAX_TOOL_OUTPUT_CHARS = 20_000


def truncate(text: str, limit: int = MAX_TOOL_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters]"


class Adapter(ABC):
    """Base class. Subclasses set `name`/`capabilities` and implement the abstract hooks."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.turn_open = True  # a started process is working on a turn until it reports the end
        self._resuming = False

    # -- starting -----------------------------------------------------------------------

    @abstractmethod
    def build_invocation(self, request: InvocationRequest) -> Invocation:
        """What to run for `request` (a fresh adapter per run: it may keep state from it)."""

    # -- reading ------------------------------------------------------------------------

    def parse_line(self, line: str) -> list[NormalizedEvent]:
        """Normalize one stdout line. Never raises."""
        text = line.rstrip("\r\n")
        if not text.strip():
            return []
        try:
            obj = json.loads(text)
        except ValueError:
            return self.parse_text_line(text)
        if not isinstance(obj, dict):
            return self.parse_text_line(text)
        try:
            return self.parse_object(obj)
        except Exception as exc:  # a malformed-but-valid JSON shape must not kill the run
            return [
                self.event(
                    EventKind.WARNING,
                    {"message": f"could not read {self.name} event: {exc!r}"},
                    raw=obj,
                )
            ]

    @abstractmethod
    def parse_object(self, obj: dict[str, Any]) -> list[NormalizedEvent]:
        """Normalize one JSON object from stdout (may keep state)."""

    def parse_text_line(self, text: str) -> list[NormalizedEvent]:
        """A stdout line that is not a JSON object."""
        return [self.event(EventKind.WARNING, {"message": text, "raw_output": True}, raw=text)]

    def parse_stderr_line(self, line: str) -> list[NormalizedEvent]:
        text = line.rstrip("\r\n")
        if not text.strip():
            return []
        return [self.event(EventKind.WARNING, {"message": text, "stream": "stderr"}, raw=text)]

    # -- steering -----------------------------------------------------------------------

    def take_outgoing(self) -> list[bytes]:
        """Bytes the adapter must write to stdin now, in reply to what it just parsed (a
        JSON-RPC handshake's next request); the executor writes them after each line."""
        return []

    def encode_user_message(self, text: str) -> bytes | None:
        """Bytes to write to stdin to deliver `text` mid-run, or None if unsupported."""
        return None

    def take_permission_requests(self) -> list[PermissionRequest]:
        """Tool calls the harness asked permission for in what it just printed; it waits
        for an answer to each."""
        return []

    def answer_permission(
        self, request: PermissionRequest, *, allow: bool, message: str = ""
    ) -> bytes | None:
        """Bytes to write to stdin to allow or deny `request` (None if unsupported)."""
        return None

    def interrupt_message(self) -> bytes | None:
        """Bytes to write to stdin to interrupt the current turn, or None if unsupported."""
        return None

    def gateway_env(self, *, url: str, token: str, kind: str) -> dict[str, str]:
        """The harness's base-URL and key variables for ozweb's model gateway at `url`, which
        speaks a provider's API of `kind` (anthropic, openai, gemini) and takes the run's
        `token` as the key; {} when the harness cannot speak that API."""
        return {}

    # -- ending -------------------------------------------------------------------------

    def finish(self, exit_code: int | None, stderr_tail: str = "") -> list[NormalizedEvent]:
        """Events after the process ended: a synthesized `turn_finished` when the harness
        never reported one, then `process_exited`."""
        events = self.finish_turn(exit_code, stderr_tail)
        signal = -exit_code if exit_code is not None and exit_code < 0 else None
        events.append(
            self.event(
                EventKind.PROCESS_EXITED,
                {"exit_code": exit_code, "signal": signal, "stderr_tail": stderr_tail},
            )
        )
        return events

    def finish_turn(self, exit_code: int | None, stderr_tail: str) -> list[NormalizedEvent]:
        if not self.turn_open:
            return []
        message = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else ""
        events = []
        if exit_code != 0:
            events.append(
                self.event(
                    EventKind.ERROR,
                    {
                        "message": message or f"{self.name} exited with code {exit_code}",
                        "http_status": None,
                        "fatal": True,
                    },
                )
            )
        events.append(self.turn_finished("success" if exit_code == 0 else "error", result_text=""))
        return events

    # -- helpers for subclasses ---------------------------------------------------------

    def event(
        self, kind: EventKind, data: dict[str, Any] | None = None, *, raw: Any = None
    ) -> NormalizedEvent:
        return NormalizedEvent(kind=kind, data=data or {}, raw=raw, session_id=self.session_id)

    def remember_session(self, session_id: Any) -> None:
        if isinstance(session_id, str) and session_id and self.session_id is None:
            self.session_id = session_id

    def turn_finished(
        self,
        status: str,
        *,
        result_text: str,
        duration_ms: int | None = None,
        num_turns: int | None = None,
        raw: Any = None,
    ) -> NormalizedEvent:
        self.turn_open = False
        return self.event(
            EventKind.TURN_FINISHED,
            {
                "status": status,
                "result_text": result_text,
                "duration_ms": duration_ms,
                "num_turns": num_turns,
            },
            raw=raw,
        )

    def usage(
        self,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
        cost_usd: float | None = None,
        cumulative: bool,
        raw: Any = None,
    ) -> NormalizedEvent:
        return self.event(
            EventKind.USAGE,
            {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cached_input_tokens": cached_input_tokens,
                "cost_usd": cost_usd,
                "cumulative": cumulative,
            },
            raw=raw,
        )

    def tool_call(
        self,
        *,
        call_id: str,
        name: str,
        input: dict[str, Any],
        kind: ToolKind | None = None,
        command: str | None = None,
        raw: Any = None,
        **extra: Any,
    ) -> NormalizedEvent:
        kind = kind or tool_kind(name)
        if command is None and kind is ToolKind.SHELL:
            value = input.get("command", input.get("cmd"))
            if isinstance(value, list):
                value = shell_script_of(value)
            command = value if isinstance(value, str) else None
        return self.event(
            EventKind.TOOL_CALL,
            {
                "call_id": call_id,
                "name": name,
                "kind": str(kind),
                "input": input,
                "command": command,
                "status": "started",
                **extra,
            },
            raw=raw,
        )

    def tool_result(
        self,
        *,
        call_id: str,
        status: str,
        output: str,
        exit_code: int | None = None,
        raw: Any = None,
        **extra: Any,
    ) -> NormalizedEvent:
        return self.event(
            EventKind.TOOL_RESULT,
            {
                "call_id": call_id,
                "status": status,
                "output": truncate(output),
                "exit_code": exit_code,
                **extra,
            },
            raw=raw,
        )


def shell_script_of(argv: list[Any]) -> str:
    """`["bash", "-lc", "echo hi"]` → `echo hi`; other argv lists are joined with spaces."""
    parts = [str(part) for part in argv]
    shells = {"bash", "sh", "zsh"}
    if len(parts) == 3 and parts[0].rsplit("/", 1)[-1] in shells and parts[1] in {"-c", "-lc"}:
        return parts[2]
    return " ".join(parts)
