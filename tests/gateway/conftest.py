from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from apps.agents.models import Harness
from apps.providers.models import Provider
from apps.providers.services import provider_create
from apps.runs.creation import NewRun, run_create
from apps.runs.models import Run, RunStatus
from apps.runs.tokens import token_issue
from tests.factories import AgentFactory
from tests.support.model_server import ModelServer

PROVIDER_KEY = "sk-provider-real-key-6f1c"  # what only the model server may see


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture(autouse=True)
def gateway_caches_cleared() -> Iterator[None]:
    """What the gateway keeps in memory for a few seconds (providers, delegation chains):
    a test's rows may reuse an earlier test's ids."""
    from apps.gateway import budgets, door

    for cache in (door._providers, door._agent_providers, budgets._lineages):
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def manual_dispatch(settings, tmp_path) -> None:
    settings.OZWEB_RUN_DISPATCH = "manual"
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")


def make_provider(owner, *, kind: str = "anthropic", base_url: str, **fields: Any) -> Provider:
    return provider_create(
        actor=owner,
        name=fields.pop("name", kind),
        kind=kind,
        base_url=base_url,
        api_key=fields.pop("api_key", PROVIDER_KEY),
        **fields,
    )


def active_run(agent, thread=None, **fields: Any) -> tuple[Run, str]:
    """A running run of `agent` and its token, as the executor leaves them."""
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread, **fields))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    run.refresh_from_db()
    return run, token_issue(run=run)


@pytest.fixture
def claude_agent(team):
    return AgentFactory(team=team, handle="claude", harness=Harness.CLAUDE, model="claude-fake")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    chunks: list[bytes]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


async def gateway_request(
    app: Any,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    query: str = "",
) -> Answer:
    """One request to an ASGI app, the answer's body messages as they came."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=20)
    chunks = []
    while True:
        message = await communicator.receive_output(timeout=20)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await communicator.wait(timeout=20)
    return Answer(
        start["status"],
        {k.decode().lower(): v.decode() for k, v in start["headers"]},
        [c for c in chunks if c],
    )
