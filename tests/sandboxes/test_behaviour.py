"""What the executor relies on, for both sandboxes: lines stream as they come, stdin EOF and
exit codes reach across, kill is immediate, setup commands, home files, workspace and env."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

ECHO = """
import json, sys
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    print(json.dumps({"echo": line.rstrip("\\n")}), flush=True)
print(json.dumps({"eof": True}), flush=True)
"""


def test_lines_stream_as_they_come_and_stdin_eof_ends_the_process(start, python):
    process = start([python, "-c", ECHO])
    lines = process.stdout_lines()
    assert json.loads(next(lines)) == {"ready": True}

    for word in ("one", "two"):
        sent = time.monotonic()
        process.write(f"{word}\n".encode())
        assert json.loads(next(lines)) == {"echo": word}
        assert time.monotonic() - sent < 0.5

    process.close_stdin()
    assert [json.loads(line) for line in lines] == [{"eof": True}]
    assert process.wait(10) == 0
    assert list(process.stdout_lines()) == []  # ended for later readers too


def test_exit_code_propagates(start, python):
    process = start([python, "-c", "import sys; print('partial line', end=''); sys.exit(3)"])
    assert list(process.stdout_lines()) == ["partial line"]
    assert process.wait(10) == 3


def test_wait_times_out_while_running_and_kill_is_immediate(start):
    process = start(["sleep", "60"])
    assert process.wait(0.2) is None
    assert process.wait(0) is None
    killed = time.monotonic()
    process.kill()
    code = process.wait(5)
    assert time.monotonic() - killed < 2
    assert code == 137  # 128 + SIGKILL, for both sandboxes
    process.kill()  # harmless the second time
    assert list(process.stdout_lines()) == []


def test_write_fails_once_stdin_is_closed(start, python):
    process = start([python, "-c", ECHO])
    next(process.stdout_lines())
    process.close_stdin()
    process.close_stdin()
    with pytest.raises(OSError):
        process.write(b"late\n")
    assert process.wait(10) == 0


def test_write_fails_once_the_process_is_gone(start, python):
    process = start([python, "-c", "pass"])
    assert list(process.stdout_lines()) == []
    assert process.wait(10) == 0
    with pytest.raises(OSError):
        process.write(b"anyone there?\n")


def test_setup_commands_run_first_in_the_workspace_and_stay_off_stdout(start, python):
    process = start(
        [python, "-c", "import os; print(open('setup.txt').read().strip()); print(os.getcwd())"],
        setup_commands=["echo from-setup", "mkdir -p sub && cd sub", "echo made > ../setup.txt"],
    )
    lines = list(process.stdout_lines())
    assert process.wait(10) == 0
    assert lines[0] == "made"
    assert lines[1].endswith("workspace")  # back in the workspace despite the `cd`
    assert "from-setup" in process.stderr_tail()


def test_a_failing_setup_command_stops_the_start(start, python, tmp_path: Path):
    process = start(
        [python, "-c", "open('harness-ran', 'w').close()"],
        setup_commands=["echo trying", "exit 7", "echo never"],
    )
    assert list(process.stdout_lines()) == []
    assert process.wait(10) == 7
    assert "never" not in process.stderr_tail()
    assert not (tmp_path / "workspace" / "harness-ran").exists()


def test_home_files_are_written_into_home(start, python, tmp_path: Path):
    process = start(
        [
            python,
            "-c",
            "import os; print(os.environ['HOME']);"
            "print(open(os.path.expanduser('~/.config/tool/settings.json')).read())",
        ],
        home_files={".config/tool/settings.json": '{"theme": "dark"}'},
    )
    lines = list(process.stdout_lines())
    assert process.wait(10) == 0
    assert lines[0] in ("/home/agent", str(tmp_path / "home"))
    assert lines[1] == '{"theme": "dark"}'


def test_home_files_can_not_escape_home(start):
    with pytest.raises(ValueError):
        start(["true"], home_files={"../outside": "x"})


def test_the_workspace_is_writable_and_persists_on_the_host(start, python, tmp_path: Path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "input.txt").write_text("from the host")
    process = start([python, "-c", "open('out.txt', 'w').write(open('input.txt').read().upper())"])
    assert process.wait(10) == 0, process.stderr_tail()
    assert (workspace / "out.txt").read_text() == "FROM THE HOST"


def test_env_reaches_the_process_and_secrets_are_not_logged(start, python, caplog):
    secret = "sk-test-0123456789abcdef-not-a-real-key"
    caplog.set_level(logging.DEBUG)
    process = start(
        [python, "-c", "import os; print(os.environ['MODEL_API_KEY'], os.environ['PLAIN'])"],
        env={"MODEL_API_KEY": secret, "PLAIN": "value"},
    )
    assert list(process.stdout_lines()) == [f"{secret} value"]
    assert process.wait(10) == 0
    assert secret not in caplog.text


def test_stderr_tail_keeps_the_last_8_kib(start, python):
    process = start(
        [python, "-c", "import sys; sys.stderr.write('x' * 50000 + 'THE END'); print('out')"]
    )
    assert list(process.stdout_lines()) == ["out"]
    assert process.wait(10) == 0
    tail = process.stderr_tail()
    assert tail.endswith("THE END")
    assert len(tail.encode()) == 8 * 1024


def test_long_lines_and_many_lines_arrive_intact(start, python):
    process = start(
        [python, "-c", "print('y' * 300000)\nfor i in range(2000): print(i)"],
    )
    lines = list(process.stdout_lines())
    assert process.wait(10) == 0
    assert lines[0] == "y" * 300000
    assert lines[1:] == [str(i) for i in range(2000)]
