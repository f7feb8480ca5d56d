"""The agent API against a real ozweb: daphne in a subprocess, on the test database.

The server shares the test database, so tests set up runs and tokens with factories and
services and check effects with the ORM; they need committed data (`transaction=True`) and a
database a second process can open (PostgreSQL, as the suite runs; an in-memory SQLite test
database cannot be shared, so there these tests skip). Nothing executes runs
(OZWEB_RUN_DISPATCH=manual in both processes): a test finishes a child run itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from apps.runs.creation import NewRun, run_create
from apps.runs.models import Run, RunStatus
from apps.runs.tokens import token_issue
from apps.runs.transitions import run_transition
from tests.conftest import shared_test_database_url
from tests.e2e.servers import ROOT, Daphne, base_env
from tests.factories import AgentFactory, ThreadFactory

OZ = ROOT / "docker" / "agent-tools" / "oz"


@pytest.fixture(scope="module")
def live_ozweb(django_db_setup, tmp_path_factory) -> Iterator[Daphne]:
    """daphne serving ozweb.asgi on a free port, on the test database."""
    tmp = tmp_path_factory.mktemp("agentapi")
    env = base_env(
        DATABASE_URL=shared_test_database_url(),
        OZWEB_VAR_DIR=str(tmp / "var"),
        OZWEB_RUN_DISPATCH="manual",
    )
    server = Daphne(env).start(tmp)
    yield server
    server.stop()


@dataclass
class World:
    """A team with two agents and a thread, the caller's live run and its token, and a
    second team that must stay invisible."""

    team: Any
    owner: Any
    coder: Any
    reviewer: Any
    general: Any
    run: Run
    token: str
    other: dict[str, Any]
    url: str

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp/"

    def mcp(self, token: str | None = None) -> McpCaller:
        return McpCaller(self.mcp_url, self.token if token is None else token)

    def oz(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OZWEB_URL": self.url,
            "OZWEB_TOKEN": self.token,
            **env,
        }
        return subprocess.run(
            ["python3", str(OZ), *args],
            input=stdin,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )


def start_run(agent, thread) -> tuple[Run, str]:
    """A run of `agent` in `thread`, running, and its token."""
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    run_transition(run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.RUNNING)
    return run, token_issue(run=run)


@pytest.fixture
def world(live_ozweb, manual_run_dispatch, owner, team, other_team) -> World:
    coder = AgentFactory(team=team, handle="coder", display_name="Coder")
    reviewer = AgentFactory(team=team, handle="reviewer", display_name="Reviewer")
    general = ThreadFactory(team=team, name="general")
    run, token = start_run(coder, general)
    other_run, other_token = start_run(other_team["agent"], other_team["thread"])
    return World(
        team=team,
        owner=owner,
        coder=coder,
        reviewer=reviewer,
        general=general,
        run=run,
        token=token,
        other={**other_team, "run": other_run, "token": other_token},
        url=live_ozweb.url,
    )


class McpCaller:
    """A real MCP client (the SDK's streamable-HTTP transport and ClientSession), one session
    per call, driven from sync test code."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _session_do(self, action) -> Any:
        async with (
            httpx2.AsyncClient(headers=self.headers, timeout=httpx2.Timeout(30, read=120)) as http,
            streamable_http_client(self.url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            initialized = await session.initialize()
            return await action(session, initialized)

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return asyncio.run(self._session_do(lambda s, _: s.call_tool(tool, arguments)))

    def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """The structured result of a call that must succeed."""
        result = self.call(tool, **arguments)
        assert not result.is_error, error_text(result)
        assert isinstance(result.structured_content, dict)
        return result.structured_content

    def error(self, tool: str, **arguments: Any) -> str:
        """The message of a call that must fail as a tool error."""
        result = self.call(tool, **arguments)
        assert result.is_error, result.structured_content
        return error_text(result)

    def tools(self) -> list[Any]:
        return asyncio.run(self._session_do(lambda s, _: s.list_tools())).tools

    def server_name(self) -> str:
        async def name(session: ClientSession, initialized: Any) -> str:
            return initialized.server_info.name

        return asyncio.run(self._session_do(name))


def error_text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def finish(run: Run, *, result: str = "", status: RunStatus = RunStatus.SUCCEEDED) -> None:
    run_transition(
        run=run,
        from_statuses=[RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING],
        to=status,
        result_text=result,
    )
