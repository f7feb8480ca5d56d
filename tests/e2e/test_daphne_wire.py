"""Live frames written straight to daphne's sockets (apps.core.wire), as daphne serves them:
the bytes every viewer reads, the order behind what twisted holds, and the viewer that stops
reading."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import websockets
from websockets.frames import Frame, Opcode

from apps.core.wire import WireText, text_frame
from tests.e2e.servers import Daphne, base_env, create_user, manage


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_a_frame_is_what_a_websocket_library_frames(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    message = WireText("héllo")
    assert message == {"type": "websocket.send", "text": "héllo"}
    assert message.frame() is message.frame()  # built once, shared


# The server's limit for a viewer's unread bytes (OZWEB_WS_MAX_BUFFERED_BYTES), below the
# default of 4 MiB: the setting is the one obeyed.
MAX_BUFFERED = 3 * 1024 * 1024
# What the kernel may hold on the way besides: the server's send buffer at its largest.
KERNEL_SEND_BUFFER = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daphne, str, int]]:
    """One embedded install for the module: each test has a thread of its own."""
    tmp = tmp_path_factory.mktemp("wire")
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        OZWEB_VAR_DIR=str(tmp / "var"),
        OZWEB_WS_MAX_BUFFERED_BYTES=str(MAX_BUFFERED),
    )
    manage(env, "migrate", "--noinput", "-v0")
    token = create_user(env, "wire", "wire-pw-12345", "Wire")
    daphne = Daphne(env).start(tmp)
    team = daphne.get_json("/api/v1/teams/", token=token)["results"][0]
    yield daphne, token, team["id"]
    daphne.stop()


@pytest.fixture
def thread(server: tuple[Daphne, str, int], request: pytest.FixtureRequest) -> int:
    daphne, token, team = server
    name = request.node.name[:40].replace("_", "-")
    created = daphne.post_json(f"/api/v1/teams/{team}/threads/", {"name": name}, token)
    return int(created["id"])


async def started(ws) -> None:
    """Returns once the stream has started: the thread's backfill is in, the pong after it."""
    await ws.send(json.dumps({"type": "ping"}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "pong":
        pass


def post(daphne: Daphne, token: str, thread: int, body: str) -> int:
    message = daphne.post_json(f"/api/v1/threads/{thread}/messages/", {"body": body}, token)
    return int(message["seq"])


def test_every_viewer_reads_the_same_frames_in_order(
    server: tuple[Daphne, str, int], thread: int
) -> None:
    daphne, token, _ = server
    url = f"ws://127.0.0.1:{daphne.port}/ws/v1/threads/{thread}/?since=0&token={token}"
    # One short frame, one with a 16-bit length, one with a 64-bit length, in turn, fast
    # enough that twisted still holds some when the next comes.
    bodies = [f"{i}:" + "x" * size for i in range(30) for size in (5, 300, 65_000)]

    async def scenario() -> list[list[tuple[int, str]]]:
        sockets = [await websockets.connect(url, max_size=None) for _ in range(5)]
        for ws in sockets:
            await started(ws)
        with ThreadPoolExecutor(4) as pool:
            seqs = await asyncio.get_running_loop().run_in_executor(
                None, lambda: list(pool.map(lambda b: post(daphne, token, thread, b), bodies))
            )

        async def read(ws) -> list[tuple[int, str]]:
            got: list[tuple[int, str]] = []
            while len(got) < len(bodies):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if frame["type"] == "message.created":
                    got.append((frame["message"]["seq"], frame["message"]["body"]))
            return got

        received = await asyncio.gather(*(read(ws) for ws in sockets))
        for ws in sockets:
            await ws.close()
        assert sorted(seqs) == [seq for seq, _ in received[0]]
        return received

    received = asyncio.run(scenario())
    expected = sorted(received[0])
    assert sorted(body for _, body in expected) == sorted(bodies)
    for frames in received:
        assert frames == expected  # same bytes, in seq order, nothing lost or doubled


def handshake(port: int, path: str) -> socket.socket:
    """A websocket client that reads nothing after the handshake, with a small buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_viewer_that_stops_reading_is_dropped_and_the_others_are_not(
    server: tuple[Daphne, str, int], thread: int
) -> None:
    daphne, token, _ = server
    path = f"/ws/v1/threads/{thread}/?since=0&token={token}"
    stalled = handshake(daphne.port, path)
    body = "y" * 60_000
    posts = MAX_BUFFERED // len(body) * 2  # enough to overfill the kernel's buffers too

    async def scenario() -> int:
        async with websockets.connect(f"ws://127.0.0.1:{daphne.port}{path}", max_size=None) as ws:
            await started(ws)
            loop = asyncio.get_running_loop()
            poster = loop.run_in_executor(
                None, lambda: [post(daphne, token, thread, body) for _ in range(posts)]
            )
            got = 0
            while got < posts:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                got += frame["type"] == "message.created"
            await poster
            return got

    assert asyncio.run(scenario()) == posts
    # The stalled socket was reset: reading it ends (no more than what was on its way) instead
    # of yielding frame after frame of what the server buffered for it.
    stalled.settimeout(10)
    read = 0
    deadline = time.monotonic() + 30
    with pytest.raises((ConnectionResetError, EOFError)):
        while time.monotonic() < deadline:
            chunk = stalled.recv(65536)
            if not chunk:
                raise EOFError
            read += len(chunk)
    assert read < MAX_BUFFERED + KERNEL_SEND_BUFFER
    stalled.close()
    assert daphne.get_json("/healthz")["ok"]
