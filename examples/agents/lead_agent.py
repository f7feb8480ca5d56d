#!/usr/bin/env python3
"""A model-free lead for ozweb's `command` harness: splits a goal between two workers, waits
for both results, and writes a summary report.

It delegates with `oz delegate` (no waiting in the call): ozweb itself posts each child run's
result back to this run, where it arrives on stdin as a new message. The lead never depends
on a worker remembering to report. Workers: $OZWEB_SCENARIO_WORKERS (comma-separated
handles), else every agent whose handle starts with "worker".

Protocol: docs/command-harness.md. Standard library only (plus the `oz` command).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

RESULT_RE = re.compile(r"Result of run (\d+) from @([\w-]+) \((\w+)\):\s*(.*)", re.DOTALL)
WAIT_SECONDS = 600
SUB_GOALS = (
    "Make an inventory of the example agents' code.",
    "Review the example agents' code.",
)


def emit(message: dict) -> None:
    print(json.dumps(message), flush=True)


def oz(*args: str, stdin: str | None = None) -> dict | list:
    result = subprocess.run(["oz", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"oz {args[0]} failed: {result.stderr.strip()}")
    return json.loads(result.stdout or "{}")


def call(call_id: str, *args: str, stdin: str | None = None) -> dict | list:
    emit({"type": "tool_call", "id": call_id, "name": "shell",
          "input": {"command": "oz " + " ".join(args)}})  # fmt: skip
    try:
        answer = oz(*args, stdin=stdin)
    except (RuntimeError, OSError, ValueError) as exc:
        emit({"type": "tool_result", "id": call_id, "output": str(exc), "exit_code": 1})
        raise
    emit(
        {"type": "tool_result", "id": call_id, "output": json.dumps(answer)[:4000], "exit_code": 0}
    )
    return answer


def workers() -> list[str]:
    named = [h.strip().lstrip("@") for h in os.environ.get("OZWEB_SCENARIO_WORKERS", "").split(",")]
    if any(named):
        return [h for h in named if h]
    team = oz("team")
    return [a["handle"] for a in team["agents"] if a["handle"].startswith("worker")]


def main() -> int:
    first = sys.stdin.readline()
    if not first:
        return 0
    goal = json.loads(first).get("text", "")
    started = time.monotonic()
    chosen = workers()[:2]
    if len(chosen) < 2:
        emit({"type": "result", "status": "error", "text": "I need two worker agents."})
        return 1
    emit({"type": "text", "text": f"Goal: {goal.strip()[:300]}\n\nSplitting it between "
          f"@{chosen[0]} and @{chosen[1]}."})  # fmt: skip
    children = {}
    for number, (handle, sub_goal) in enumerate(zip(chosen, SUB_GOALS, strict=True), 1):
        answer = call(f"delegate-{number}", "delegate", f"@{handle}", sub_goal)
        children[handle] = answer

    results: dict[str, tuple[str, str]] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    while len(results) < len(chosen) and time.monotonic() < deadline:
        line = sys.stdin.readline()
        if not line:
            break
        text = json.loads(line).get("text", "")
        for match in RESULT_RE.finditer(text):
            _run, handle, status, outcome = match.groups()
            results[handle] = (status, outcome.strip())
    if len(results) < len(chosen):
        missing = ", ".join(f"@{h}" for h in chosen if h not in results)
        emit({"type": "result", "status": "error", "text": f"No result from {missing}."})
        return 1

    sections = [f"# Summary\n\nGoal: {goal.strip()[:500]}\n"]
    for handle in chosen:
        status, outcome = results[handle]
        sections.append(f"## @{handle} ({status})\n\n{outcome}\n")
    listing = call("artifacts", "artifacts")
    artifacts = listing["artifacts"] if isinstance(listing, dict) else listing
    reports = [a["name"] for a in artifacts if a["name"].startswith(tuple(chosen))]
    for name in reports:
        body = oz("get", name)
        sections.append(f"### {name} (v{body.get('version')})\n\n{body.get('content', '')[:3000]}")
    summary = "\n".join(sections)
    stored = call("summary", "put", "summary.md", "--kind", "report", stdin=summary)
    emit(
        {
            "type": "result",
            "text": f"Both workers reported. Summary in **summary.md** (v{stored['version']}).",
            "duration_ms": int((time.monotonic() - started) * 1000),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
