"""The references every benchmark measures in the same run as ozweb: what the same work costs
with no framework at all, on the same machine, with the same client.

* `relay`: a bare websocket relay. Viewers connect to ws://HOST:<ws port>/ (any path) and get
  every message as the same `message.created` frame ozweb's feed sends; a poster POSTs
  `{"body": ...}` to http://HOST:<http port>/ (any path, keep-alive HTTP/1.1, answered
  `201 {"seq": n}`), and the relay hands the frame to every viewer with the `websockets`
  library's `broadcast`. No database, no auth, no channel layer: the floor for fan-out.
  With `--lines-port`, producers may also connect a plain TCP socket there and write
  newline-delimited JSON lines (`{"type": "text", "text": ...}`, what an agent prints on its
  stdout); the lines that arrive in one read go to every viewer as one frame
  (`{"type": "message.created", "messages": [...]}`): the floor for streaming agent output.

      .venv/bin/python -m bench.references relay --ws-port 8101 --http-port 8102 \
          [--lines-port 8103]

* `bare_asgi`: an ASGI app that reads a POST's body, parses it as JSON and answers 201 with a
  small JSON body (a GET answers 200), served by daphne like ozweb (`start_daphne(
  "bench.references:bare_asgi", ...)`): the floor for one request under the same server.

Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stack import HOST, ROOT, VENV_BIN, Api, free_port, log, stop

# -- a bare ASGI request ---------------------------------------------------------------------


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            break
    status, answer = 200, b'{"ok":true}'
    if scope["method"] == "POST":
        # The least a real write does with its input: parse it and answer with an id.
        data = json.loads(body or b"{}")
        bare_asgi.seq += 1  # type: ignore[attr-defined]
        status = 201
        answer = json.dumps({"seq": bare_asgi.seq, "length": len(str(data))}).encode()  # type: ignore[attr-defined]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


bare_asgi.seq = 0  # type: ignore[attr-defined]


# -- a bare websocket relay ------------------------------------------------------------------


class Relay:
    def __init__(self) -> None:
        self.viewers: set[Any] = set()
        self.seq = 0

    async def viewer(self, ws: Any) -> None:
        self.viewers.add(ws)
        try:
            async for raw in ws:
                # The feed's keep-alive: ozweb's consumer answers a ping with a pong.
                if '"ping"' in raw:
                    await ws.send('{"type":"pong"}')
        finally:
            self.viewers.discard(ws)

    def post(self, body: bytes) -> bytes:
        from websockets.asyncio.server import broadcast

        data = json.loads(body or b"{}")
        self.seq += 1
        frame = json.dumps(
            {
                "type": "message.created",
                "message": {"seq": self.seq, "body": data.get("body", ""), "kind": "text"},
            }
        )
        broadcast(self.viewers, frame)  # the frame is built once, sent to everyone
        return json.dumps({"seq": self.seq}).encode()

    async def lines(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A producer's stdout: what one read brings is parsed and broadcast as one frame
        (no batching delay, no framework: the least a relay of agent output does)."""
        from websockets.asyncio.server import broadcast

        rest = b""
        try:
            while chunk := await reader.read(65536):
                *complete, rest = (rest + chunk).split(b"\n")
                messages = []
                for line in complete:
                    with contextlib.suppress(ValueError):
                        data = json.loads(line)
                        self.seq += 1
                        messages.append(
                            {"seq": self.seq, "body": data.get("text", ""), "kind": "text"}
                        )
                if messages:
                    broadcast(
                        self.viewers,
                        json.dumps({"type": "message.created", "messages": messages}),
                    )
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Just enough HTTP/1.1 for keep-alive POSTs with a Content-Length."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                answer = self.post(body) if head.startswith(b"POST") else b"[]"
                status = b"201 Created" if head.startswith(b"POST") else b"200 OK"
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n" + answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def _relay_main(ws_port: int, http_port: int, lines_port: int | None = None) -> None:
    from websockets.asyncio.server import serve

    relay = Relay()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    http_server = await asyncio.start_server(relay.http, HOST, http_port)
    lines_server = None
    if lines_port is not None:
        lines_server = await asyncio.start_server(relay.lines, HOST, lines_port)
    async with serve(
        relay.viewer, HOST, ws_port, compression=None, ping_interval=None, max_queue=None
    ):
        print(f"relay ws :{ws_port} http :{http_port}", flush=True)
        await stop.wait()
    http_server.close()
    if lines_server is not None:
        lines_server.close()
    with contextlib.suppress(Exception):
        await http_server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.references")
    sub = parser.add_subparsers(dest="what", required=True)
    relay = sub.add_parser("relay", help="a bare websockets broadcast relay")
    relay.add_argument("--ws-port", type=int, required=True)
    relay.add_argument("--http-port", type=int, required=True)
    relay.add_argument("--lines-port", type=int, help="also take producers' stdout lines here")
    args = parser.parse_args(argv)
    asyncio.run(_relay_main(args.ws_port, args.http_port, args.lines_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# -- the relay as a benchmark's stack ----------------------------------------------------------


class RelayStack:
    """The relay in its own process, with the parts of `bench.stack.Stack` a benchmark uses
    (start → a client, pid, close), so it is driven exactly as ozweb is. With `lines=True`
    it also takes producers' stdout lines on `lines_port` (see the module's docstring)."""

    db_label = "none (relay)"
    pg_db = None

    def __init__(self, args: argparse.Namespace, *, lines: bool = False) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="ozweb-bench-relay-"))
        self.ws_port, self.http_port = free_port(), free_port()
        self.lines_port = free_port() if lines else None
        self.proc: Any = None

    def start(self, timeout: float = 30) -> RelayApi:
        logf = open(self.tmp / "relay.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "python"), "-m", "bench.references", "relay",
             "--ws-port", str(self.ws_port), "--http-port", str(self.http_port),
             *(["--lines-port", str(self.lines_port)] if self.lines_port else [])],
            cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        logf.close()
        api = RelayApi(self.http_port, self.ws_port)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if api.request("GET", "/")[0] == 200:
                    return api
            if time.monotonic() >= deadline:
                raise RuntimeError(f"relay not ready after {timeout:g} s")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def profile(self, *args: Any, **kwargs: Any) -> None:
        return None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.tmp / "relay.log").read_text(errors="replace")[-3000:]
        return ""

    def note_error(self, label: str, exc: Exception, notes: list[str]) -> None:
        notes.append(f"ERROR: {type(exc).__name__}: {exc}")
        log(f"{label}: ERROR {exc}\n{self.log_tail()[-1500:]}")

    def close(self, *, post_mortem: list[str] | None = None) -> None:
        if self.proc is not None:
            stop([self.proc])
            self.proc = None
        if post_mortem is None and not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


class RelayApi(Api):
    """`bench.stack.Api` pointed at the relay: one thread, the relay's websocket URL."""

    def __init__(self, http_port: int, ws_port: int) -> None:
        super().__init__(http_port, token="")
        self.ws_port = ws_port

    def team_id(self) -> int:
        return 0

    def create_thread(self, team: int, name: str) -> int:
        return 0

    def feed_url(self, thread_id: int, query: str = "") -> str:
        return f"ws://{HOST}:{self.ws_port}/"
