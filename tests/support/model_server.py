"""Scripted model server for running the real harness CLIs offline (HARNESSES.md §12).

One stdlib HTTP server speaks the four model APIs the harness CLIs use:

* Anthropic Messages (`POST /v1/messages`, `HEAD /`, `count_tokens`) — Claude Code, opencode
* OpenAI Responses (`POST /v1/responses`) — Codex
* OpenAI Chat Completions (`POST /v1/chat/completions`) — Qwen Code, Aider, opencode
* Gemini (`POST /v1beta/models/{model}:streamGenerateContent|generateContent|countTokens`)

Every request is recorded (`server.requests`). Each main model call gets the next queued
`Reply` if a test queued one, else what the test's `server.policy` answers, else the default
policy: the newest input carries a tool result
→ final text; else a shell tool is offered → one shell call of `echo hello-from-tool`; else text.
Side calls (Claude's title query, Gemini's router, token counting) never consume the queue.

    with ModelServer() as server:
        server.queue(Reply.shell("sleep 3; echo done"))
        ... run a CLI with ANTHROPIC_BASE_URL=server.url ...
        assert server.main_requests()[1].body["messages"][-1] ...

Manual use: `python -m tests.support.model_server --port 8765`.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SHELL_COMMAND = "echo hello-from-tool"
DEFAULT_FINAL_TEXT = "All done. The command printed hello-from-tool."
DEFAULT_PLAIN_TEXT = "OK"
PREAMBLE_TEXT = "I will run a command."
INPUT_TOKENS = 30
OUTPUT_TOKENS = 12

ANTHROPIC = "anthropic"
RESPONSES = "responses"
CHAT = "chat"
GEMINI = "gemini"

# Shell tools by protocol, in order of preference, with how each takes its command.
_SHELL_TOOLS: dict[str, list[str]] = {
    ANTHROPIC: ["Bash", "bash"],
    RESPONSES: ["exec_command", "shell_command", "shell"],
    CHAT: ["run_shell_command", "bash", "shell", "execute_command", "Bash"],
    GEMINI: ["run_shell_command"],
}


def shell_arguments(tool_name: str, command: str) -> dict[str, Any]:
    if tool_name == "exec_command":
        return {"cmd": command}
    if tool_name == "shell":
        return {"command": ["bash", "-lc", command]}
    if tool_name in {"Bash", "bash"}:
        return {"command": command, "description": "Run a shell command"}
    return {"command": command}


@dataclass(frozen=True)
class Reply:
    """What the model answers to one main request."""

    kind: str  # "text" | "tool_call" | "shell" | "http_error"
    text: str = ""
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    delay_s: float = 0.0  # wait before answering

    @classmethod
    def final_text(cls, text: str = DEFAULT_FINAL_TEXT, *, delay_s: float = 0.0) -> Reply:
        return cls(kind="text", text=text, delay_s=delay_s)

    @classmethod
    def shell(cls, command: str = DEFAULT_SHELL_COMMAND, *, text: str = PREAMBLE_TEXT) -> Reply:
        """A call of whichever shell tool the client offers (Bash, exec_command, …)."""
        return cls(kind="shell", text=text, tool_input={"command": command})

    @classmethod
    def tool_call(cls, name: str, tool_input: dict[str, Any], *, text: str = "") -> Reply:
        """A call of the named tool, e.g. `mcp__ozweb__send_message`."""
        return cls(kind="tool_call", text=text, tool_name=name, tool_input=tool_input)

    @classmethod
    def http_error(cls, status: int, message: str = "") -> Reply:
        return cls(kind="http_error", status=status, text=message or f"scripted error {status}")

    @property
    def command(self) -> str:
        return str(self.tool_input.get("command", ""))


@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    protocol: str | None
    main: bool  # a model turn (not a side query, pre-check or token count)
    reply: Reply | None = None
    at: float = field(default_factory=time.time)

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def reported_usage(self) -> dict[str, int]:
        """The token counts the answer reported: every model answer (main or side) reports
        INPUT_TOKENS and OUTPUT_TOKENS; errors, token counts and pre-checks report none."""
        if self.reply is None or self.reply.kind == "http_error":
            return {"input_tokens": 0, "output_tokens": 0}
        return {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS}

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def text(self) -> str:
        """The whole body as text, for `"needle" in request.text()` assertions."""
        return json.dumps(self.body, ensure_ascii=False) if self.body is not None else ""


# -- decisions (pure functions of the request body; used by the server and by tests) --------


def classify(method: str, path: str, body: Any) -> tuple[str | None, bool]:
    """(protocol, is_main_turn) for a request."""
    route = urlsplit(path).path
    if route.endswith("/messages/count_tokens"):
        return ANTHROPIC, False
    if route.endswith("/messages"):
        fmt = ((body or {}).get("output_config") or {}).get("format") or {}
        return ANTHROPIC, fmt.get("type") != "json_schema"
    if route.endswith("/responses"):
        return RESPONSES, method == "POST"
    if route.endswith("/chat/completions"):
        return CHAT, True
    if ":streamGenerateContent" in route:
        return GEMINI, True
    if ":generateContent" in route or ":countTokens" in route:
        return GEMINI, False
    return None, False


def offered_tool_names(protocol: str, body: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if protocol == GEMINI:
            names += [decl.get("name", "") for decl in tool.get("functionDeclarations") or []]
        elif protocol == CHAT:
            names.append((tool.get("function") or {}).get("name", ""))
        else:
            names.append(tool.get("name", ""))
    return names


def shell_tool_for(protocol: str, body: dict[str, Any]) -> str | None:
    offered = offered_tool_names(protocol, body)
    return next((name for name in _SHELL_TOOLS[protocol] if name in offered), None)


def newest_input_is_tool_result(protocol: str, body: dict[str, Any]) -> bool:
    if protocol == ANTHROPIC:
        # Skip trailing system messages: Claude appends mid-run user messages as role:system.
        messages = [m for m in body.get("messages") or [] if m.get("role") != "system"]
        if not messages or messages[-1].get("role") != "user":
            return False
        content = messages[-1].get("content")
        return isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in content
        )
    if protocol == RESPONSES:
        items = body.get("input")
        if isinstance(items, str) or not items:
            return False
        for item in reversed(items):
            if item.get("type") == "reasoning":
                continue
            return item.get("type") in {"function_call_output", "custom_tool_call_output"}
        return False
    if protocol == CHAT:
        messages = body.get("messages") or []
        return bool(messages) and messages[-1].get("role") == "tool"
    if protocol == GEMINI:
        contents = body.get("contents") or []
        if not contents:
            return False
        parts = contents[-1].get("parts") or []
        return any("functionResponse" in part for part in parts)
    return False


def default_reply(protocol: str, body: dict[str, Any]) -> Reply:
    """The §12 policy."""
    if newest_input_is_tool_result(protocol, body):
        return Reply.final_text()
    if shell_tool_for(protocol, body):
        return Reply.shell()
    return Reply.final_text(DEFAULT_PLAIN_TEXT)


def side_reply(protocol: str, body: dict[str, Any]) -> Reply:
    """Answers to side queries: Claude's session title, Gemini's router."""
    fmt = ((body or {}).get("output_config") or {}).get("format") or {}
    if protocol == ANTHROPIC and fmt.get("type") == "json_schema":
        properties = (fmt.get("schema") or {}).get("properties") or {}
        answer = {name: "Fake title" for name in properties} or {"title": "Fake title"}
        return Reply.final_text(json.dumps(answer))
    return Reply.final_text("{}")


# -- rendering -------------------------------------------------------------------------------


@dataclass
class ToolUse:
    call_id: str
    name: str
    arguments: dict[str, Any]


def resolve_tool_use(protocol: str, body: dict[str, Any], reply: Reply) -> ToolUse | None:
    if reply.kind == "tool_call":
        return ToolUse(_new_id("call"), reply.tool_name, dict(reply.tool_input))
    if reply.kind == "shell":
        name = shell_tool_for(protocol, body) or _SHELL_TOOLS[protocol][0]
        return ToolUse(_new_id("call"), name, shell_arguments(name, reply.command))
    return None


_counter = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{next(_counter)}{uuid.uuid4().hex[:12]}"


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]


def sse(event: str | None, data: dict[str, Any]) -> bytes:
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {json.dumps(data)}\n\n".encode()


def anthropic_events(body: dict[str, Any], reply: Reply) -> Iterator[bytes]:
    model = body.get("model") or "claude-fake"
    message_id = _new_id("msg")
    tool = resolve_tool_use(ANTHROPIC, body, reply)
    yield sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": INPUT_TOKENS,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        },
    )
    index = 0
    if reply.text:
        yield sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        yield sse("ping", {"type": "ping"})
        for word in _words(reply.text):
            delta = {"type": "text_delta", "text": word}
            yield sse(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        index = 1
    if tool:
        block = {
            "type": "tool_use",
            "id": tool.call_id.replace("call_", "toolu_"),
            "name": tool.name,
        }
        yield sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {**block, "input": {}},
            },
        )
        delta = {"type": "input_json_delta", "partial_json": json.dumps(tool.arguments)}
        yield sse(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
        yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": OUTPUT_TOKENS},
        },
    )
    yield sse("message_stop", {"type": "message_stop"})


def anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    tool = resolve_tool_use(ANTHROPIC, body, reply)
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    if tool:
        content.append(
            {"type": "tool_use", "id": tool.call_id, "name": tool.name, "input": tool.arguments}
        )
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or "claude-fake",
        "content": content,
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
    }


def responses_events(body: dict[str, Any], reply: Reply) -> Iterator[bytes]:
    seq = itertools.count()
    response = {
        "id": _new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model") or "gpt-fake",
        "status": "in_progress",
        "output": [],
    }

    def event(kind: str, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, **fields, "sequence_number": next(seq)})

    yield event("response.created", response=response)
    yield event("response.in_progress", response=response)
    tool = resolve_tool_use(RESPONSES, body, reply)
    if tool:
        item_id = _new_id("fc")
        arguments = json.dumps(tool.arguments)
        item = {
            "type": "function_call",
            "id": item_id,
            "call_id": tool.call_id,
            "name": tool.name,
            "arguments": "",
            "status": "in_progress",
        }
        yield event("response.output_item.added", output_index=0, item=item)
        yield event(
            "response.function_call_arguments.delta",
            item_id=item_id,
            output_index=0,
            delta=arguments,
        )
        yield event(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=0,
            arguments=arguments,
        )
        item = {**item, "arguments": arguments, "status": "completed"}
    else:
        item_id = _new_id("msg")
        item = {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        yield event("response.output_item.added", output_index=0, item=item)
        part = {"type": "output_text", "text": "", "annotations": []}
        location = {"item_id": item_id, "output_index": 0, "content_index": 0}
        yield event("response.content_part.added", **location, part=part)
        for word in _words(reply.text):
            yield event("response.output_text.delta", **location, delta=word)
        yield event("response.output_text.done", **location, text=reply.text)
        part = {**part, "text": reply.text}
        yield event("response.content_part.done", **location, part=part)
        item = {**item, "status": "completed", "content": [part]}
    yield event("response.output_item.done", output_index=0, item=item)
    usage = {
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": OUTPUT_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    }
    completed = {**response, "status": "completed", "output": [item], "usage": usage}
    yield event("response.completed", response=completed)


def chat_chunks(body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
    base = {
        "id": _new_id("chatcmpl"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or "gpt-fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }

    tool = resolve_tool_use(CHAT, body, reply)
    usage = {
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    }
    if tool:
        call = {
            "index": 0,
            "id": tool.call_id,
            "type": "function",
            "function": {"name": tool.name, "arguments": ""},
        }
        yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        arguments = {"index": 0, "function": {"arguments": json.dumps(tool.arguments)}}
        yield chunk({"tool_calls": [arguments]})
        yield chunk({}, "tool_calls", usage=usage)
    else:
        yield chunk({"role": "assistant", "content": ""})
        for word in _words(reply.text):
            yield chunk({"content": word})
        yield chunk({}, "stop", usage=usage)


def chat_completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    tool = resolve_tool_use(CHAT, body, reply)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if tool:
        message["tool_calls"] = [
            {
                "id": tool.call_id,
                "type": "function",
                "function": {"name": tool.name, "arguments": json.dumps(tool.arguments)},
            }
        ]
    return {
        "id": _new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "gpt-fake",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}
        ],
        "usage": {
            "prompt_tokens": INPUT_TOKENS,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        },
    }


def gemini_response(body: dict[str, Any], reply: Reply, *, model: str) -> dict[str, Any]:
    tool = resolve_tool_use(GEMINI, body, reply)
    parts: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
    if tool:
        parts.append({"functionCall": {"name": tool.name, "args": tool.arguments}})
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": INPUT_TOKENS,
            "candidatesTokenCount": OUTPUT_TOKENS,
            "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS,
        },
        "modelVersion": model,
    }


def error_body(protocol: str | None, status: int, message: str) -> dict[str, Any]:
    if protocol == ANTHROPIC:
        error_type = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": _new_id("req"),
        }
    if protocol == GEMINI:
        return {"error": {"code": status, "message": message, "status": HTTPStatus(status).name}}
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error" if status < 500 else "server_error",
            "param": None,
            "code": None,
        }
    }


# -- server ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # As real providers' servers do: each SSE event leaves at once, not after the client's
    # delayed ACK of the one before (Nagle's algorithm would hold it up to 40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def do_HEAD(self) -> None:
        self.server.owner.record(self, None)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.owner.record(self, None)
        self._send_json(404, error_body(None, 404, f"fake: no route {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.server.owner.handle(self, body)

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, chunks: Iterator[bytes]) -> None:
        # Chunked encoding with the terminating chunk: without it Claude Code waits forever.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ModelServer


class ModelServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self.requests: list[RecordedRequest] = []
        self._replies: collections.deque[Reply] = collections.deque()
        # When nothing is queued: (protocol, body) -> the reply, or None for the default policy.
        # For agents that run concurrently, where a shared queue's order would be a race.
        self.policy: Callable[[str, dict[str, Any]], Reply | None] | None = None
        self._lock = threading.Condition()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> ModelServer:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="model-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL without a path, e.g. for ANTHROPIC_BASE_URL / GOOGLE_GEMINI_BASE_URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL with `/v1`, for OpenAI-style clients (codex provider, OPENAI_BASE_URL)."""
        return f"{self.url}/v1"

    # scripting

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def main_requests(self, protocol: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r for r in self.requests if r.main and (protocol is None or r.protocol == protocol)
            ]

    def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 30.0
    ) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self.requests), timeout=timeout)

    def wait_for_main_requests(self, count: int, timeout: float = 30.0) -> bool:
        return self.wait_for(lambda reqs: sum(r.main for r in reqs) >= count, timeout)

    # request handling

    def record(self, handler: _Handler, body: Any) -> RecordedRequest:
        protocol, main = classify(handler.command, handler.path, body)
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers=dict(handler.headers.items()),
            body=body,
            protocol=protocol,
            main=main,
        )
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()
        return request

    def next_reply(self, protocol: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        chosen = self.policy(protocol, body) if self.policy is not None else None
        return chosen if chosen is not None else default_reply(protocol, body)

    def handle(self, handler: _Handler, body: Any) -> None:
        protocol, main = classify(handler.command, handler.path, body)
        route = urlsplit(handler.path).path
        if protocol is None or not isinstance(body, dict):
            self.record(handler, body)
            status = 404 if protocol is None else 400
            handler._send_json(status, error_body(protocol, status, f"fake: no route {route}"))
            return
        if route.endswith("/count_tokens"):
            self.record(handler, body)
            handler._send_json(200, {"input_tokens": INPUT_TOKENS})
            return
        if route.endswith(":countTokens"):
            self.record(handler, body)
            handler._send_json(200, {"totalTokens": INPUT_TOKENS})
            return
        reply = self.next_reply(protocol, body) if main else side_reply(protocol, body)
        with self._lock:
            request = self.record(handler, body)
            request.reply = reply
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.kind == "http_error":
            handler._send_json(reply.status, error_body(protocol, reply.status, reply.text))
            return
        stream = bool(body.get("stream")) or "alt=sse" in handler.path
        if protocol == ANTHROPIC:
            if stream:
                handler._send_stream(anthropic_events(body, reply))
            else:
                handler._send_json(200, anthropic_message(body, reply))
        elif protocol == RESPONSES:
            handler._send_stream(responses_events(body, reply))
        elif protocol == CHAT:
            if stream:
                chunks = (f"data: {json.dumps(c)}\n\n".encode() for c in chat_chunks(body, reply))
                handler._send_stream(itertools.chain(chunks, [b"data: [DONE]\n\n"]))
            else:
                handler._send_json(200, chat_completion(body, reply))
        else:
            model = route.rsplit("/", 1)[-1].split(":", 1)[0]
            response = gemini_response(body, reply, model=model)
            if stream:
                handler._send_stream(iter([f"data: {json.dumps(response)}\r\n\r\n".encode()]))
            else:
                handler._send_json(200, response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    server = ModelServer(args.host, args.port, verbose=True).start()
    print(f"scripted model server on {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
