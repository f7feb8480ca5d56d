#!/usr/bin/env python3
"""A model-free reviewer for ozweb's `command` harness.

For each `{"type": "user", "text": ...}` message it reviews the workspace ($OZWEB_WORKSPACE,
else /workspace when that exists, else the current directory; a message naming a
sub-directory narrows the review):

* every Python file is compiled (`py_compile`) and syntax errors are reported,
* lines longer than 120 characters and trailing whitespace in Python files are counted,
* TODO / FIXME / XXX markers are counted and listed,
* files over 1 MB are listed.

Each check is reported as a `tool_call`/`tool_result` pair and the findings as a Markdown
`result`. It keeps reading messages until stdin closes. Standard library only.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
LARGE_FILE_BYTES = 1_000_000
LONG_LINE = 120
TODO = re.compile(r"\b(TODO|FIXME|XXX)\b")
MAX_LISTED = 20


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


@dataclass
class Findings:
    root: Path
    files: int = 0
    python_files: int = 0
    syntax_errors: list[str] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)
    large_files: list[str] = field(default_factory=list)
    long_lines: int = 0
    trailing_whitespace: int = 0


def walk(root: Path):
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS)
        for name in sorted(names):
            yield Path(directory) / name


def check(call_id: int, name: str, description: str, run) -> None:
    emit(
        {
            "type": "tool_call",
            "id": f"check_{call_id}",
            "name": name,
            "input": {"what": description},
        }
    )
    try:
        output, status = run(), "success"
    except Exception as exc:  # one broken check must not end the review
        output, status = f"check failed: {exc!r}", "error"
    emit({"type": "tool_result", "id": f"check_{call_id}", "output": output, "status": status})


def review(root: Path) -> Findings:
    findings = Findings(root=root)
    paths = list(walk(root))
    findings.files = len(paths)
    python = [p for p in paths if p.suffix == ".py"]
    findings.python_files = len(python)

    def compile_all() -> str:
        with tempfile.TemporaryDirectory() as scratch:  # never write .pyc into the workspace
            cfile = str(Path(scratch) / "out.pyc")
            for path in python:
                try:
                    py_compile.compile(str(path), cfile=cfile, doraise=True)
                except py_compile.PyCompileError as exc:
                    error = str(exc.exc_value).strip().splitlines()[0]
                    findings.syntax_errors.append(f"{path.relative_to(root)}: {error}")
        return f"{len(python)} Python files compiled, {len(findings.syntax_errors)} with errors"

    def lint_and_todos() -> str:
        for path in paths:
            try:
                if path.stat().st_size > LARGE_FILE_BYTES:
                    continue
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # binary or unreadable
            for number, line in enumerate(text.splitlines(), start=1):
                if TODO.search(line):
                    findings.todos.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
                if path.suffix == ".py":
                    findings.long_lines += len(line) > LONG_LINE
                    findings.trailing_whitespace += line != line.rstrip()
        return (
            f"{len(findings.todos)} TODO markers, {findings.long_lines} long lines, "
            f"{findings.trailing_whitespace} lines with trailing whitespace"
        )

    def large_files() -> str:
        for path in paths:
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size > LARGE_FILE_BYTES:
                findings.large_files.append(f"{path.relative_to(root)} ({size / 1e6:.1f} MB)")
        return f"{len(findings.large_files)} files over {LARGE_FILE_BYTES // 1_000_000} MB"

    check(1, "py_compile", "compile every Python file", compile_all)
    check(2, "lint", "TODO markers, long lines, trailing whitespace", lint_and_todos)
    check(3, "large_files", f"files over {LARGE_FILE_BYTES} bytes", large_files)
    return findings


def bullet_list(items: list[str]) -> list[str]:
    lines = [f"- `{item}`" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"- … and {len(items) - MAX_LISTED} more")
    return lines


def report(findings: Findings) -> str:
    problems = len(findings.syntax_errors) + len(findings.large_files)
    verdict = "No blocking problems found." if not problems else f"{problems} problem(s) found."
    lines = [
        f"# Review of `{findings.root}`",
        "",
        verdict,
        "",
        "| check | result |",
        "|---|---|",
        f"| files | {findings.files} ({findings.python_files} Python) |",
        f"| syntax errors | {len(findings.syntax_errors)} |",
        f"| TODO/FIXME/XXX | {len(findings.todos)} |",
        f"| lines over {LONG_LINE} chars (Python) | {findings.long_lines} |",
        f"| trailing whitespace (Python) | {findings.trailing_whitespace} |",
        f"| files over 1 MB | {len(findings.large_files)} |",
    ]
    for title, items in (
        ("Syntax errors", findings.syntax_errors),
        ("Large files", findings.large_files),
        ("TODO markers", findings.todos),
    ):
        if items:
            lines += ["", f"## {title}", "", *bullet_list(items)]
    return "\n".join(lines) + "\n"


def target_of(text: str, workspace: Path) -> Path:
    """A message naming an existing sub-directory narrows the review to it."""
    for word in text.split():
        candidate = (workspace / word.strip("`'\".,")).resolve()
        if candidate.is_dir() and candidate.is_relative_to(workspace.resolve()):
            return candidate
    return workspace


def main() -> int:
    workspace = Path(os.environ.get("OZWEB_WORKSPACE") or "/workspace")
    if not workspace.is_dir():
        workspace = Path.cwd()
    emit({"type": "session", "id": os.environ.get("OZWEB_SESSION_ID") or f"review-{os.getpid()}"})
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError:
            message = {"type": "user", "text": line}
        if message.get("type") != "user":
            continue
        started = time.monotonic()
        findings = review(target_of(str(message.get("text", "")), workspace))
        duration_ms = int((time.monotonic() - started) * 1000)
        emit({"type": "result", "text": report(findings), "duration_ms": duration_ms})
    return 0


if __name__ == "__main__":
    sys.exit(main())
