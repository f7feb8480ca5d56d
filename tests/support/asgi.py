"""One HTTP request straight to an ASGI app (no server), as the doors' tests send them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.testing import ApplicationCommunicator


@dataclass
class RawAnswer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def asgi_post(
    app: Any,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    scheme: str = "http",
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> RawAnswer:
    """POST `body` to `path`; the whole answer, however many body messages it came in."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": client,
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
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=20)
    return RawAnswer(start["status"], start["headers"], b"".join(chunks))
