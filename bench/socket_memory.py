"""Websocket memory after close: does a daphne's RSS keep growing wave after wave?

    .venv/bin/python -m bench.socket_memory [--sockets 2000] [--waves 3]

Starts the real app (daphne, embedded mode: SQLite, the in-process channel layer) with the
connection caps raised, then in each wave opens N sockets to `/ws/v1/threads/{id}/?since=0`
(each gets the thread's one message), and closes them all. It prints daphne's RSS at start,
with the sockets open, and after they closed. A leak grows the RSS after close wave after
wave; an allocator keeping freed memory for reuse (what issue 9 finding 9 saw: 161 → 249 MB)
stays at the first wave's level. tests/threads/test_socket_memory.py counts the objects.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import websockets

from tests.e2e.servers import Daphne, base_env, manage


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wave(port: int, thread: int, token: str, count: int) -> list[websockets.ClientConnection]:
    url = f"ws://127.0.0.1:{port}/ws/v1/threads/{thread}/?since=0&token={token}"
    sockets = []
    for start in range(0, count, 25):
        batch = await asyncio.gather(*(_connect(url) for _ in range(min(25, count - start))))
        sockets += batch
    await asyncio.gather(*(asyncio.wait_for(ws.recv(), 30) for ws in sockets))
    return sockets


async def _connect(url: str) -> websockets.ClientConnection:
    for _ in range(5):  # a busy machine may drop a handshake: try again
        try:
            return await websockets.connect(url, open_timeout=30)
        except (OSError, websockets.InvalidMessage, TimeoutError):
            await asyncio.sleep(0.5)
    return await websockets.connect(url, open_timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--waves", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ozweb-bench-ws-") as tmp:
        env = base_env(
            OZWEB_VAR_DIR=str(Path(tmp) / "var"),
            OZWEB_WS_MAX_PER_USER=str(3 * args.sockets),
            OZWEB_WS_MAX_PER_ADDRESS=str(3 * args.sockets),
            OZWEB_THROTTLE_AUTH_FAILURES="100000/minute",
        )
        manage(env, "migrate", "--noinput", "-v0")
        token = manage(env, "create_api_user", "bench", "--team", "Bench").split()[-1]
        server = Daphne(env).start(Path(tmp))
        assert server.process is not None
        pid = server.process.pid
        try:
            team = server.get_json("/api/v1/teams/", token=token)["results"][0]
            thread = server.post_json(
                f"/api/v1/teams/{team['id']}/threads/", {"name": "mem"}, token
            )["id"]
            server.post_json(f"/api/v1/threads/{thread}/messages/", {"body": "hi"}, token)
            print(f"start: {rss_mb(pid):.0f} MB")
            for n in range(1, args.waves + 1):
                sockets = asyncio.run(_open_close(server.port, thread, token, args.sockets, pid))
                time.sleep(2)  # daphne reaps closed application instances every second
                print(f"wave {n}: {sockets} open {args.sockets}, after close {rss_mb(pid):.0f} MB")
        finally:
            server.stop()


async def _open_close(port: int, thread: int, token: str, count: int, pid: int) -> str:
    sockets = await wave(port, thread, token, count)
    peak = f"{rss_mb(pid):.0f} MB with"
    await asyncio.gather(*(ws.close() for ws in sockets))
    return peak


if __name__ == "__main__":
    main()
