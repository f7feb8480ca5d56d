"""Scaled mode: PostgreSQL + channels_redis, two daphne processes on different ports.

A message posted to either process reaches websocket viewers connected to the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import websockets

from tests.conftest import POSTGRES_URL, REDIS_URL, require_service
from tests.e2e.servers import Daphne, base_env, create_user, manage

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def scaled_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    require_service(POSTGRES_URL, "PostgreSQL")
    require_service(REDIS_URL, "Redis")
    name = f"ozweb_scaled_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    env = base_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        OZWEB_CHANNEL_PREFIX=f"ozweb-scaled-{uuid.uuid4().hex[:8]}",
        OZWEB_VAR_DIR=str(tmp_path / "var"),
    )
    manage(env, "migrate", "--noinput", "-v0")
    yield env
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def next_message(ws, timeout: float = 5.0) -> dict:
    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert frame["type"] == "message.created", frame
    return frame["message"]


def test_two_daphne_processes_share_messages_through_redis(
    scaled_env: dict[str, str], tmp_path: Path
) -> None:
    token = create_user(scaled_env, "scaler", "scaler-pw-1", "Scaled")
    first = Daphne(scaled_env).start(tmp_path)
    second = Daphne(scaled_env).start(tmp_path)
    try:
        assert first.get_json("/healthz")["channel_layer"]["backend"] == "RedisPubSubChannelLayer"
        assert first.get_json("/healthz")["database"]["vendor"] == "postgresql"
        team = first.get_json("/api/v1/teams/", token=token)["results"][0]
        thread = first.post_json(
            f"/api/v1/teams/{team['id']}/threads/", {"name": "scale"}, token=token
        )

        async def scenario() -> None:
            path = f"/ws/v1/threads/{thread['id']}/?since=0&token={token}"
            async with (
                websockets.connect(f"ws://127.0.0.1:{first.port}{path}") as on_first,
                websockets.connect(f"ws://127.0.0.1:{second.port}{path}") as on_second,
            ):
                await asyncio.sleep(0.3)  # both consumers have joined the group
                posted = await asyncio.to_thread(
                    first.post_json,
                    f"/api/v1/threads/{thread['id']}/messages/",
                    {"body": "posted to the first"},
                    token,
                )
                assert (await next_message(on_second))["seq"] == posted["seq"]
                assert (await next_message(on_first))["seq"] == posted["seq"]

                posted = await asyncio.to_thread(
                    second.post_json,
                    f"/api/v1/threads/{thread['id']}/messages/",
                    {"body": "posted to the second"},
                    token,
                )
                received = await next_message(on_first)
                assert received["body"] == "posted to the second"
                assert received["seq"] == posted["seq"] == 2
                assert (await next_message(on_second))["seq"] == 2

        asyncio.run(scenario())
    finally:
        first.stop()
        second.stop()
