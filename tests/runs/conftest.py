from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import close_old_connections

from apps.agents.models import Agent, Harness
from apps.runs.models import Run
from tests.factories import AgentFactory


@pytest.fixture(autouse=True)
def run_settings(settings, tmp_path: Path) -> None:
    settings.OZWEB_RUN_DISPATCH = "manual"
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")


@pytest.fixture
def local_sandbox(settings) -> None:
    settings.OZWEB_SANDBOX = "local"


@pytest.fixture
def program(tmp_path: Path) -> Callable[[str], str]:
    """Write a Python program to a file; returns a command line that runs it."""
    counter = iter(range(1000))

    def write(source: str) -> str:
        path = tmp_path / f"agent_{next(counter)}.py"
        path.write_text(textwrap.dedent(source))
        return f"{sys.executable} -u {path}"

    return write


@pytest.fixture
def command_agent(team) -> Callable[..., Agent]:
    def make(command: str, **fields) -> Agent:
        fields.setdefault("handle", "bot")
        return AgentFactory(team=team, harness=Harness.COMMAND, command=command, **fields)

    return make


class Background:
    """execute_run in a worker thread, as the in-process worker does."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def execute(self, run_id: int) -> threading.Thread:
        from apps.runs.executor import execute_run

        def target() -> None:
            try:
                execute_run(run_id)
            finally:
                close_old_connections()

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)
        return thread

    def join(self, timeout: float = 30) -> None:
        for thread in self.threads:
            thread.join(timeout)
            assert not thread.is_alive(), "the executor did not finish"


@pytest.fixture
def background() -> Iterator[Background]:
    runner = Background()
    yield runner
    runner.join()


def wait_for(predicate: Callable[[], object], timeout: float = 15, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def run_status(run_id: int) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run_id)
