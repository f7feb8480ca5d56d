#!/usr/bin/env python3
"""A model-free agent for ozweb's `command` harness: runs the shell commands it is sent.

Each `{"type": "user", "text": ...}` line on stdin holds a shell command: a code block or
`code` span in it, else the text itself (ozweb's "who wrote where" header, leading @mentions
and a `$ ` or `run:` prefix are dropped). It runs in $OZWEB_WORKSPACE, else /workspace when
that exists, else the current directory, and the agent reports it as a `tool_call`, a
`tool_result` and a `result`. It keeps reading until stdin closes or it gets
`stop`/`exit`/`quit`. `{"type": "interrupt"}` kills the running command.

Protocol: docs/command-harness.md. Standard library only.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

STOP_WORDS = {"stop", "exit", "quit"}
MAX_OUTPUT = 20_000


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def read_stdin(inbox: queue.Queue) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            message = {"type": "user", "text": line}  # plain text works too
        inbox.put(message)
    inbox.put(None)  # stdin closed


HEADER = re.compile(r"^\S+ wrote in \S+:\n")  # how ozweb introduces a message from a thread
FENCED = re.compile(r"```[\w-]*\n(.*?)```", re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
MENTIONS = re.compile(r"^(?:@[\w.-]+[,:]?\s+)+")


def command_of(text: str) -> str:
    """The shell command in a message: a code block or `code` span if there is one, else the
    text without ozweb's "who wrote where" header, leading @mentions and a `$ `/`run:` prefix."""
    text = HEADER.sub("", text.strip(), count=1)
    for pattern in (FENCED, INLINE):
        match = pattern.search(text)
        if match:
            return match.group(1).strip()
    text = MENTIONS.sub("", text).strip()
    for prefix in ("$ ", "run:"):
        if text.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def workdir() -> Path:
    if os.environ.get("OZWEB_WORKSPACE"):
        return Path(os.environ["OZWEB_WORKSPACE"])
    workspace = Path("/workspace")
    return workspace if workspace.is_dir() else Path.cwd()


def run_command(call_id: str, command: str, inbox: queue.Queue) -> tuple[int | None, bool]:
    """Run one command; returns (exit code, interrupted). Messages arriving meanwhile stay
    queued, except `interrupt`, which kills the command."""
    emit({"type": "tool_call", "id": call_id, "name": "shell", "input": {"command": command}})
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=workdir(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    held: list = []
    interrupted = False
    while process.poll() is None:
        try:
            message = inbox.get(timeout=0.1)
        except queue.Empty:
            continue
        if message is not None and message.get("type") == "interrupt":
            process.kill()
            interrupted = True
        else:
            held.append(message)
    reader.join(timeout=5)
    _requeue_front(inbox, held)  # keep their order ahead of anything that arrives later
    text = "".join(output)
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + "\n[output truncated]"
    exit_code = process.returncode
    emit(
        {
            "type": "tool_result",
            "id": call_id,
            "output": text,
            "exit_code": exit_code,
            **({"status": "interrupted"} if interrupted else {}),
        }
    )
    return exit_code, interrupted


def _requeue_front(inbox: queue.Queue, messages: list) -> None:
    with inbox.mutex:
        for message in reversed(messages):
            inbox.queue.appendleft(message)
        inbox.not_empty.notify()


def main() -> int:
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=read_stdin, args=(inbox,), daemon=True).start()
    emit({"type": "session", "id": os.environ.get("OZWEB_SESSION_ID") or f"shell-{os.getpid()}"})
    calls = 0
    while True:
        message = inbox.get()
        if message is None:
            return 0
        if message.get("type") != "user":
            continue  # an interrupt with nothing running
        text = str(message.get("text", ""))
        if text.strip().lower() in STOP_WORDS:
            emit({"type": "result", "text": "Stopping."})
            return 0
        command = command_of(text)
        if not command:
            emit({"type": "error", "message": "empty command"})
            emit({"type": "result", "status": "error", "text": "Nothing to run."})
            continue
        calls += 1
        started = time.monotonic()
        exit_code, interrupted = run_command(f"call_{calls}", command, inbox)
        duration_ms = int((time.monotonic() - started) * 1000)
        if interrupted:
            emit({"type": "result", "status": "interrupted", "text": f"Interrupted `{command}`."})
        else:
            # The turn did what it was asked; the tool_result carries the command's own status.
            text = f"`{command}` exited with code {exit_code}."
            emit({"type": "result", "text": text, "duration_ms": duration_ms})


if __name__ == "__main__":
    sys.exit(main())
