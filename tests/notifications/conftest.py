from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(autouse=True)
def webhook_settings(settings, tmp_path) -> None:
    """Receivers listen on 127.0.0.1; retries come fast; runs are executed by the test."""
    settings.OZWEB_ALLOW_PRIVATE_WEBHOOKS = True
    settings.OZWEB_WEBHOOK_BACKOFF_SECONDS = 0.05
    settings.OZWEB_WEBHOOK_TIMEOUT_SECONDS = 5
    settings.OZWEB_RUN_DISPATCH = "manual"
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers POSTs with the given statuses in turn
    (then 200) and queues what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: queue.Queue[Received] = queue.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.put(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ozweb?x=1"

    def next(self, timeout: float = 10) -> Received:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([])
    yield server
    server.close()


@pytest.fixture
def flaky_receiver() -> Iterator[Receiver]:
    server = Receiver([500, 500])
    yield server
    server.close()
