"""Shared fixtures. Tests of the outside world use the real services; in CI (CI=true) a
missing service fails the test instead of skipping it."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, urlparse

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.teams.models import Role
from tests.factories import (
    AgentFactory,
    MembershipFactory,
    ThreadFactory,
    token_for,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("OZWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "OZWEB_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)


def require_service(url: str, what: str) -> None:
    """Skip (locally) or fail (in CI) when a real service is not listening."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=2):
            return
    except OSError as exc:
        message = f"{what} is not reachable at {parsed.hostname}:{parsed.port} ({exc})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def shared_test_database_url() -> str:
    """The test database's URL, for a server in another process to share it (skips unless it
    is PostgreSQL: an in-memory SQLite test database cannot be shared)."""
    from django.db import connections

    db = connections["default"].settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("live-server tests share the test database: PostgreSQL only")
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture(autouse=True)
def fast_password_hasher(settings) -> None:
    """Factories set a password per user; the production hasher would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def throttle_counts_cleared(settings) -> None:
    """The throttles count in the cache: each test starts from zero, in this process's memory
    (never in a Redis that REDIS_URL may name). Login lockouts are in the database, which each
    test has to itself."""
    from django.core.cache import cache

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings) -> Iterator[None]:
    """Each test gets a fresh in-process channel layer unless it asks for Redis."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "apps.core.layers.EmbeddedChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def redis_channel_layer(settings) -> Iterator[str]:
    from channels.layers import channel_layers

    require_service(REDIS_URL, "Redis")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"ozweb-test-{os.getpid()}"},
        }
    }
    channel_layers.backends.clear()
    yield REDIS_URL
    channel_layers.backends.clear()


@pytest.fixture
def owner(db):
    return MembershipFactory(role=Role.OWNER)


@pytest.fixture
def team(owner):
    return owner.team


@pytest.fixture
def member(team):
    return MembershipFactory(team=team, role=Role.MEMBER)


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, role=Role.ADMIN)


@pytest.fixture
def viewer(team):
    return MembershipFactory(team=team, role=Role.VIEWER)


@pytest.fixture
def agent(team):
    return AgentFactory(team=team, handle="coder", display_name="Coder")


@pytest.fixture
def thread(team):
    return ThreadFactory(team=team, name="general")


@pytest.fixture
def other_team(db):
    """A second team with its own owner, agent and thread: never visible to the first."""
    other_owner = MembershipFactory(role=Role.OWNER)
    other = other_owner.team
    return {
        "team": other,
        "owner": other_owner,
        "agent": AgentFactory(team=other, handle="spy"),
        "thread": ThreadFactory(team=other, name="secret"),
    }


def api_client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def api(owner) -> APIClient:
    return api_client_for(owner.user)


def session_api_client_for(user) -> APIClient:
    """An API client authenticated by the session cookie, as the browser is."""
    client = APIClient()
    client.force_login(user)
    return client


def web_client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def web(owner) -> Client:
    """The owner, logged in to the HTML pages."""
    return web_client_for(owner.user)


@pytest.fixture
def post_messages(owner):
    """Append `count` plain messages to a thread (one transaction, consecutive seqs)."""
    from apps.threads.services import NewMessage, messages_append

    def post(thread, count: int, *, author=None, prefix: str = "message"):
        author = author or owner.user
        items = [NewMessage(body=f"{prefix} {n}", author_user=author) for n in range(1, count + 1)]
        return messages_append(thread=thread, items=items)

    return post


@pytest.fixture
def embedded_env(tmp_path):
    """A fresh embedded install (its own SQLite file and var dir), migrated, no Redis."""
    from tests.e2e.servers import base_env, manage

    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        OZWEB_VAR_DIR=str(tmp_path / "var"),
    )
    manage(env, "migrate", "--noinput", "-v0")
    return env


@pytest.fixture
def embedded_server(embedded_env, tmp_path):
    """daphne serving that install on a free loopback port."""
    from tests.e2e.servers import Daphne

    server = Daphne(embedded_env).start(tmp_path)
    yield server
    server.stop()


# A browser's page on the server it talks to: the Origin and the Host of its websockets.
ALLOWED_HOST = "127.0.0.1:8000"
ALLOWED_ORIGIN = f"http://{ALLOWED_HOST}"


def websocket(
    path: str,
    *,
    token: str | None = None,
    origin: str | None = ALLOWED_ORIGIN,
    cookie: str = "",
    host: str | None = ALLOWED_HOST,
    client: tuple[str, int] | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
):
    """A communicator on the real ASGI stack (origin check, auth, caps, routing), from the
    peer `client` (none by default), with these more `headers`; not yet connected."""
    from channels.testing import WebsocketCommunicator

    from ozweb.asgi import router

    if token:
        path += ("&" if "?" in path else "?") + f"token={token}"
    headers = [*headers]
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(router, path, headers=headers)
    if client is not None:
        communicator.scope["client"] = client  # read when the application starts: on connect
    return communicator


def session_cookie_for(user) -> str:
    """A `Cookie` header value for a real logged-in session of `user`."""
    client = web_client_for(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def assert_closed_with(communicator, code: int) -> None:
    """The consumer accepted, then closed with an application close code."""
    connected, _ = await communicator.connect()
    assert connected
    output = await communicator.receive_output(timeout=2)
    assert output == {"type": "websocket.close", "code": code}
    await communicator.disconnect()


@pytest.fixture
async def worker_db_connections_closed():
    """Consumers reach the database from sync_to_async's worker thread; close that thread's
    connections after the test so PostgreSQL can flush and drop the test database promptly."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture
def manual_run_dispatch(settings) -> None:
    """Deliveries queue runs but nothing executes them: for tests of the platform around runs."""
    settings.OZWEB_RUN_DISPATCH = "manual"


@pytest.fixture(scope="session")
def harness_image() -> str:
    """The offline-built harness image (cached: seconds when nothing changed)."""
    import os

    from apps.runs.sandboxes import DockerSandbox
    from harness_image import build_harness_image

    if not DockerSandbox.available():
        message = "no Docker engine answers (scripts/docker/ensure-engine.sh starts one)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return build_harness_image(log=lambda line: None)


@pytest.fixture
def live_gateway(settings) -> Iterator[str]:
    """ozweb's ASGI app (agent API and gateway) on a free loopback port in this process, as
    OZWEB_AGENT_API_URL: what an isolated container reaches through its relay socket."""
    import uvicorn

    from ozweb.asgi import router
    from tests.e2e.servers import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(router, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    settings.OZWEB_AGENT_API_URL = url
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def isolated_docker_sandbox(harness_image: str, settings, monkeypatch) -> None:
    """Docker sandboxes as the product runs them: `--network none`, ozweb's agent API and
    gateway reached through the worker's relay socket, nothing else."""
    settings.OZWEB_SANDBOX = "docker"
    settings.OZWEB_HARNESS_IMAGE = harness_image
    monkeypatch.delenv("OZWEB_SANDBOX_NETWORK", raising=False)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """No connection pool in the test process: pooled connections outlive the test database's
    teardown and keep it in use, so it could not be dropped. (Servers the e2e tests start keep
    their pool, so it is exercised there.)"""
    from django.db import connections

    connections["default"].settings_dict.get("OPTIONS", {}).pop("pool", None)
