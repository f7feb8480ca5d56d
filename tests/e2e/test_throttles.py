"""Throttles, lockouts, caps and the origin check as daphne serves them: a real embedded ozweb
with low limits, driven over real sockets (urllib, websockets)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.e2e.servers import Daphne, create_user

LIMITS = {
    "OZWEB_WS_MAX_PER_USER": "3",
    "OZWEB_THROTTLE_AUTH_FAILURES": "3/day",
    "OZWEB_LOGIN_FAILURE_LIMIT": "3",
}


@pytest.fixture
def server(embedded_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Daphne, str]]:
    env = {**embedded_env, **LIMITS}
    token = create_user(env, "lim", "lim-pw-12345", "Limits")
    daphne = Daphne(env).start(tmp_path)
    yield daphne, token
    daphne.stop()


def request(url: str, *, headers: dict[str, str], data: bytes | None = None):
    """(status, headers, body) of a request, errors included."""
    try:
        with urllib.request.urlopen(  # noqa: S310 -- loopback
            urllib.request.Request(url, data=data, headers=headers), timeout=10
        ) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_websocket_caps_and_origins(server: tuple[Daphne, str]) -> None:
    daphne, token = server
    team = daphne.get_json("/api/v1/teams/", token=token)["results"][0]
    thread = daphne.get_json(f"/api/v1/teams/{team['id']}/threads/", token=token)["results"][0]
    url = f"ws://127.0.0.1:{daphne.port}/ws/v1/threads/{thread['id']}/?token={token}"

    async def pong(ws) -> str:
        await ws.send(json.dumps({"type": "ping"}))
        return json.loads(await asyncio.wait_for(ws.recv(), 5))["type"]

    async def close_code(ws) -> int | None:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        return closed.value.rcvd.code if closed.value.rcvd else None

    async def scenario() -> None:
        sockets = [await websockets.connect(url) for _ in range(3)]
        assert [await pong(ws) for ws in sockets] == ["pong"] * 3
        assert await close_code(await websockets.connect(url)) == 4429
        # A client that drops its connection without a closing handshake frees its place.
        sockets.pop().transport.abort()
        for _ in range(50):
            await asyncio.sleep(0.1)
            ws = await websockets.connect(url)
            try:
                if await pong(ws) == "pong":
                    sockets.append(ws)
                    break
            except websockets.ConnectionClosed:
                continue
        assert len(sockets) == 3
        for ws in sockets:
            await ws.close()
        # The page's own origin is accepted, another port of the same host is not.
        own = f"http://127.0.0.1:{daphne.port}"
        async with websockets.connect(url, origin=own) as ws:
            assert await pong(ws) == "pong"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, origin=f"http://127.0.0.1:{daphne.port + 1}")
        assert refused.value.response.status_code == 403

    asyncio.run(scenario())


def test_guessed_tokens_meet_429_on_every_door_and_logins_lock_out(
    server: tuple[Daphne, str],
) -> None:
    daphne, token = server
    base = daphne.url
    for n in range(3):
        status, _, _ = request(f"{base}/api/v1/teams/", headers={"Authorization": f"Token g{n}"})
        assert status == 401
    status, headers, body = request(f"{base}/api/v1/teams/", headers={"Authorization": "Token x"})
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 86400
    assert json.loads(body)["code"] == "throttled"
    # One count per address for every door: the agent verbs and MCP refuse it too.
    bearer = {"Authorization": "Bearer ozr_guess", "Content-Type": "application/json"}
    for path in ("/api/v1/agent/whoami/", "/mcp/"):
        mcp = {"Accept": "application/json, text/event-stream"}
        status, headers, _ = request(f"{base}{path}", headers={**bearer, **mcp}, data=b"{}")
        assert status == 429 and headers["Retry-After"], path

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def log_in(password: str) -> tuple[int, str | None]:
        form = opener.open(f"{base}/login/", timeout=5).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert csrf
        data = urllib.parse.urlencode(
            {"username": "lim", "password": password, "csrfmiddlewaretoken": csrf.group(1)}
        ).encode()
        try:
            with opener.open(
                urllib.request.Request(f"{base}/login/", data=data, headers={"Referer": base}),
                timeout=5,
            ) as response:
                return response.status, None
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Retry-After")

    assert [log_in("wrong") for _ in range(2)] == [(200, None), (200, None)]
    assert log_in("wrong") == (429, "300")
    assert log_in("lim-pw-12345") == (429, "600")
