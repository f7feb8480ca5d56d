"""Harness adapters: start a coding-agent CLI and normalize its output (HARNESSES.md §11)."""

from __future__ import annotations

from typing import Any

from .base import (
    Adapter,
    Capabilities,
    EventKind,
    Invocation,
    InvocationRequest,
    McpServer,
    NormalizedEvent,
    StdinMode,
    ToolKind,
    tool_kind,
)
from .claude import ClaudeAdapter
from .codex import CodexAdapter
from .command import CommandAdapter
from .gemini import GeminiAdapter
from .opencode import OpencodeAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    adapter.name: adapter
    for adapter in (ClaudeAdapter, CodexAdapter, GeminiAdapter, OpencodeAdapter, CommandAdapter)
}


def get_adapter(name: str, **options: Any) -> Adapter:
    """A fresh adapter for one run. Options go to the adapter (e.g. `command=[...]` for the
    command harness, `include_partial_messages=True` for claude)."""
    try:
        adapter_class = ADAPTERS[name]
    except KeyError:
        raise ValueError(
            f"unknown harness {name!r}; known: {', '.join(sorted(ADAPTERS))}"
        ) from None
    return adapter_class(**options)


__all__ = [
    "ADAPTERS",
    "Adapter",
    "Capabilities",
    "ClaudeAdapter",
    "CodexAdapter",
    "CommandAdapter",
    "EventKind",
    "GeminiAdapter",
    "Invocation",
    "InvocationRequest",
    "McpServer",
    "NormalizedEvent",
    "OpencodeAdapter",
    "StdinMode",
    "ToolKind",
    "get_adapter",
    "tool_kind",
]


def capabilities_of(name: str) -> dict[str, bool]:
    """What a harness can do, for the UI and the API (all False for an unknown one)."""
    adapter_class = ADAPTERS.get(name)
    if adapter_class is None:
        return {"mid_run_input": False, "resume": False, "usage": False, "cost": False}
    caps = adapter_class.capabilities
    return {
        "mid_run_input": caps.mid_run_input,
        "resume": caps.resume,
        "usage": caps.usage,
        "cost": caps.cost,
    }
