"""Redis restarted during a busy feed (scaled mode: two daphne processes, the pub/sub layer).

Messages are posted to one process while viewers watch on the other, so every live frame
crosses Redis. Redis dies mid-feed (killed, nothing saved), posts go on, and it comes back.
Every viewer still gets every message once, in order: the API client by paging with
`?since=`, the websocket clients by the feed's own resume (`?since=` on the JSON socket,
`{"type": "resume"}` on the thread page's socket) and its gap fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.error
import uuid
from pathlib import Path

import pytest
import websockets

from tests.e2e.servers import Daphne, base_env
from tests.faults.conftest import FaultDatabase
from tests.faults.services import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(300)]

TOTAL = 60
SEQ_IN_HTML = re.compile(r'data-seq="(\d+)"')


class Viewer:
    """A client that keeps the seqs it was shown and reconnects from the last one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seqs: list[int] = []
        self.reconnects = 0

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def done(self) -> bool:
        return self.last >= TOTAL


async def watch_json(viewer: Viewer, port: int, thread_id: int, token: str) -> None:
    while not viewer.done():
        url = f"ws://127.0.0.1:{port}/ws/v1/threads/{thread_id}/?since={viewer.last}&token={token}"
        try:
            async with websockets.connect(url, open_timeout=5) as ws:
                while not viewer.done():
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "message.created":
                        viewer.seqs.append(frame["message"]["seq"])
        except (OSError, websockets.ConnectionClosed, TimeoutError):
            viewer.reconnects += 1
            await asyncio.sleep(0.2)


async def watch_page(viewer: Viewer, port: int, thread_id: int, token: str) -> None:
    """The thread page's protocol: open, say `resume` from the newest seq in the DOM."""
    while not viewer.done():
        url = f"ws://127.0.0.1:{port}/ws/threads/{thread_id}/?token={token}"
        try:
            async with websockets.connect(url, open_timeout=5) as ws:
                await ws.send(json.dumps({"type": "resume", "since": viewer.last}))
                while not viewer.done():
                    frame = await ws.recv()
                    viewer.seqs.extend(int(seq) for seq in SEQ_IN_HTML.findall(str(frame)))
        except (OSError, websockets.ConnectionClosed, TimeoutError):
            viewer.reconnects += 1
            await asyncio.sleep(0.2)


async def poll_api(viewer: Viewer, server: Daphne, thread_id: int, token: str) -> None:
    while not viewer.done():
        try:
            page = await asyncio.to_thread(
                server.get_json,
                f"/api/v1/threads/{thread_id}/messages/?since={viewer.last}",
                token,
            )
            viewer.seqs.extend(m["seq"] for m in page["results"])
        except (OSError, urllib.error.HTTPError):
            viewer.reconnects += 1
        await asyncio.sleep(0.1)


def test_every_viewer_gets_every_message_in_order_across_a_redis_restart(
    shared_postgres_database: FaultDatabase, private_redis: RedisServer, tmp_path: Path
) -> None:
    env = base_env(
        DATABASE_URL=shared_postgres_database.url,
        REDIS_URL=private_redis.url,
        OZWEB_CHANNEL_PREFIX=f"ozweb-faults-{uuid.uuid4().hex[:8]}",
        OZWEB_RUN_DISPATCH="inprocess",
        OZWEB_VAR_DIR=str(tmp_path / "var"),
    )
    token = shared_postgres_database.token
    poster = Daphne(env).start(tmp_path)
    watched = Daphne(env).start(tmp_path)
    try:
        team = poster.get_json("/api/v1/teams/", token=token)["results"][0]
        thread = poster.post_json(
            f"/api/v1/teams/{team['id']}/threads/", {"name": "busy"}, token=token
        )["id"]
        posted: list[int] = []
        outage: dict[str, float] = {}

        async def post(n: int) -> None:
            message = await asyncio.to_thread(
                poster.post_json, f"/api/v1/threads/{thread}/messages/", {"body": f"m{n}"}, token
            )
            posted.append(message["seq"])

        async def feed() -> None:
            for n in range(1, TOTAL + 1):
                if n == TOTAL // 3:
                    await asyncio.to_thread(private_redis.stop)
                    outage["from"] = time.monotonic()
                if n == 2 * TOTAL // 3:
                    await asyncio.to_thread(private_redis.start)
                    outage["to"] = time.monotonic()
                await post(n)
                await asyncio.sleep(0.05)

        async def scenario() -> list[Viewer]:
            viewers = [Viewer("api"), Viewer("json socket"), Viewer("page socket")]
            tasks = [
                asyncio.create_task(poll_api(viewers[0], watched, thread, token)),
                asyncio.create_task(watch_json(viewers[1], watched.port, thread, token)),
                asyncio.create_task(watch_page(viewers[2], watched.port, thread, token)),
            ]
            await asyncio.sleep(0.5)  # the sockets are in their groups before the first post
            await feed()
            with contextlib.suppress(TimeoutError):  # the assertions say who missed what
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
            return viewers

        viewers = asyncio.run(scenario())
        assert posted == list(range(1, TOTAL + 1))
        for viewer in viewers:
            assert viewer.seqs == posted, (viewer.name, viewer.seqs, watched.log())
        assert outage["to"] > outage["from"]
    finally:
        poster.stop()
        watched.stop()
