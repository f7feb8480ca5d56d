"""Test helpers for MCP: a small recording MCP server (official SDK, streamable HTTP) and the
scripted model server's rendering of codex's namespaced MCP tool calls."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from tests.support.model_server import Reply


class RecordingMcpServer:
    """An MCP server named `ozweb` on 127.0.0.1 with two tools, `post_message` and
    `memory_set`, that records every HTTP request's Authorization header and every call."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Condition()
        mcp = MCPServer("ozweb")

        @mcp.tool()
        def post_message(body: str, thread: int | str | None = None) -> dict[str, Any]:
            """Post a message to your run's thread."""
            self._record_call("post_message", {"body": body, "thread": thread})
            return {"posted": True}

        @mcp.tool()
        def memory_set(key: str, value: str) -> dict[str, Any]:
            """Write a note to your team's shared memory."""
            self._record_call("memory_set", {"key": key, "value": value})
            return {"key": key}

        app = mcp.streamable_http_app(
            streamable_http_path="/mcp/",
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

        async def recording(scope, receive, send) -> None:
            if scope["type"] == "http":
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                with self._lock:
                    self.authorizations.append(headers.get("authorization", ""))
            await app(scope, receive, send)

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            recording, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp/"

    def _record_call(self, name: str, arguments: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((name, arguments))
            self._lock.notify_all()

    def __enter__(self) -> RecordingMcpServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the MCP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def with_codex_namespaces(
    events: Callable[[dict[str, Any], Reply], Iterator[bytes]],
) -> Callable[[dict[str, Any], Reply], Iterator[bytes]]:
    """Wrap the model server's Responses-API renderer for codex's MCP tools.

    Codex 0.169 offers an MCP server's tools as one `{"type": "namespace", "name":
    "mcp__ozweb", "tools": [function tools]}` and routes a `function_call` by its `namespace`
    and bare `name` (a flat `mcp__ozweb__post_message` is "unsupported call"). A scripted
    `Reply.tool_call("mcp__ozweb__post_message", ...)` is sent that way when the request
    offered that namespace."""

    def render(body: dict[str, Any], reply: Reply) -> Iterator[bytes]:
        namespaces = {
            tool.get("name")
            for tool in body.get("tools") or []
            if isinstance(tool, dict) and tool.get("type") == "namespace"
        }
        namespace, _, bare = reply.tool_name.rpartition("__")
        for chunk in events(body, reply):
            if reply.kind != "tool_call" or namespace not in namespaces:
                yield chunk
                continue
            lines = chunk.decode().split("\n")
            for index, line in enumerate(lines):
                if line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                    item = data.get("item") or {}
                    if item.get("type") == "function_call":
                        item.update(name=bare, namespace=namespace)
                    lines[index] = "data: " + json.dumps(data)
            yield "\n".join(lines).encode()

    return render


def offered_tools(body: dict[str, Any]) -> set[str]:
    """Tool names a model request offered, a codex namespace's tools as `<namespace>__<name>`
    (Anthropic and Responses shapes; Gemini's functionDeclarations too)."""
    names: set[str] = set()
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":
            names |= {f"{tool['name']}__{inner.get('name')}" for inner in tool.get("tools") or []}
        elif "functionDeclarations" in tool:
            names |= {decl.get("name", "") for decl in tool["functionDeclarations"]}
        else:
            names.add(tool.get("name", ""))
    return names
