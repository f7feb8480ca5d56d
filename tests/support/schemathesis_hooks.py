"""Hooks for the schemathesis runs (tests/support/schemathesis.py): loaded by the CLI."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A valid `delegate(wait=true)` waits for its child's result up to `timeout` seconds, and
    nothing runs the child here: wait one second, not up to half an hour."""
    if case.operation.path.endswith("/agent/delegate/") and isinstance(case.body, dict):
        timeout = case.body.get("timeout")
        if case.body.get("wait") is True and isinstance(timeout, int | float) and timeout > 1:
            case.body["timeout"] = 1
