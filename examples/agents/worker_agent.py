#!/usr/bin/env python3
"""A model-free worker for ozweb's `command` harness: does one piece of analysis it is given,
stores its findings as a report artifact with the `oz` command, and answers with a summary.

Goals it understands (words in the message): "inventory" (files, sizes and line counts of a
directory), "review" (compile every Python file, count TODO/FIXME markers and long lines).
The directory is the first path in the message, else $OZWEB_AGENTS_DIR, else /workspace.

Protocol: docs/command-harness.md. Standard library only (plus the `oz` command ozweb provides).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

PATH_RE = re.compile(r"(?<![\w])(/[\w./-]+)")


def emit(message: dict) -> None:
    print(json.dumps(message), flush=True)


def target_dir(goal: str) -> Path:
    for match in PATH_RE.findall(goal):
        if Path(match).is_dir():
            return Path(match)
    for candidate in (os.environ.get("OZWEB_AGENTS_DIR"), os.environ.get("OZWEB_WORKSPACE")):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path.cwd()


def files_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts)[
        :500
    ]


def inventory(directory: Path) -> str:
    rows = []
    for path in files_in(directory):
        data = path.read_bytes()
        rows.append((str(path.relative_to(directory)), len(data), data.count(b"\n")))
    lines = [
        f"# Inventory of `{directory}`",
        "",
        f"{len(rows)} files, {sum(r[1] for r in rows):,} bytes, {sum(r[2] for r in rows):,} lines.",
        "",
        "| file | bytes | lines |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{name}` | {size:,} | {count:,} |" for name, size, count in rows]
    return "\n".join(lines) + "\n"


def review(directory: Path) -> str:
    findings: list[str] = []
    python = [p for p in files_in(directory) if p.suffix == ".py"]
    for path in python:
        name = path.relative_to(directory)
        source = path.read_text(errors="replace")
        try:
            compile(source, str(name), "exec")
        except SyntaxError as exc:
            findings.append(f"- `{name}:{exc.lineno}`: does not compile: {exc.msg}")
        for number, line in enumerate(source.splitlines(), 1):
            if re.search(r"\b(TODO|FIXME|XXX)\b", line):
                findings.append(f"- `{name}:{number}`: marker `{line.strip()[:80]}`")
            if len(line) > 100:
                findings.append(f"- `{name}:{number}`: line of {len(line)} characters")
    verdict = "No findings." if not findings else f"{len(findings)} findings:"
    return (
        "\n".join(
            [
                f"# Review of `{directory}`",
                "",
                f"{len(python)} Python files. {verdict}",
                "",
                *findings,
            ]
        )
        + "\n"
    )


def oz(*args: str, stdin: str | None = None) -> dict:
    result = subprocess.run(["oz", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"oz {args[0]} failed: {result.stderr.strip()}")
    return json.loads(result.stdout or "{}")


def main() -> int:
    line = sys.stdin.readline()
    if not line:
        return 0
    goal = json.loads(line).get("text", "")
    handle = os.environ.get("OZWEB_AGENT_HANDLE", "worker")
    started = time.monotonic()
    kind = "review" if "review" in goal.lower() else "inventory"
    directory = target_dir(goal)
    emit(
        {
            "type": "text",
            "text": f"Starting {'an' if kind == 'inventory' else 'a'} {kind} of `{directory}`.",
        }
    )
    emit({"type": "tool_call", "id": "work", "name": kind, "input": {"directory": str(directory)}})
    report = review(directory) if kind == "review" else inventory(directory)
    emit({"type": "tool_result", "id": "work", "output": report[:2000], "exit_code": 0})
    name = f"{handle}-{kind}.md"
    emit(
        {"type": "tool_call", "id": "put", "name": "shell", "input": {"command": f"oz put {name}"}}
    )
    try:
        stored = oz("put", name, "--kind", "report", stdin=report)
    except (RuntimeError, OSError, ValueError) as exc:
        emit({"type": "tool_result", "id": "put", "output": str(exc), "exit_code": 1})
        emit({"type": "result", "status": "error", "text": f"Could not store the report: {exc}"})
        return 1
    emit({"type": "tool_result", "id": "put", "output": json.dumps(stored), "exit_code": 0})
    first_line = next((ln for ln in report.splitlines()[2:] if ln.strip()), "")
    emit(
        {
            "type": "result",
            "text": f"Stored **{name}** (v{stored.get('version')}). {first_line}",
            "duration_ms": int((time.monotonic() - started) * 1000),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
