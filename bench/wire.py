"""A feed viewer that costs the machine little: the websocket's frames read straight off an
asyncio transport, stamped on receipt, and parsed only when they are checked.

The viewers share the machine's two cores with the servers they measure (bench/scale.py: at
saturation they used ~60 % of a core through the `websockets` library's asyncio client, a
task wake-up and a json.loads per frame). Here a read is one `data_received` call that cuts
the server's frames out of the bytes: 1.1 µs a frame on an AMD EPYC, against 3.8 µs through
the library's own Sans-I/O parser and 7.5 µs more for json.loads (measured with 400-byte
frames, the feed's). The JSON is parsed afterwards, when the frames are checked.

It speaks only what a server sends to this client: unfragmented text frames, unmasked (RFC
6455 §5.1), with no extension (none is offered), plus close and ping (answered with a pong:
daphne pings every 20 s). Anything else ends the connection with an error rather than being
misread. The handshake's key and the frames this client sends come from `websockets`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri
from websockets.utils import accept_key, generate_key

MAX_HEAD = 65536  # bytes of handshake response before it counts as malformed
READ_SIZE = 65536  # bytes per read, into the reader's own buffer


class FeedReader(asyncio.BufferedProtocol):
    """One websocket. `frames` holds (time.time_ns() on receipt, payload) for each text frame;
    frames read together share the stamp, as they arrived together.

    A BufferedProtocol, so that each read lands in this reader's own buffer: asyncio's
    `data_received` path allocates 256 KiB per read, which glibc maps and unmaps each time
    (23 µs of system time a frame here, against 8 µs this way)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = self.loop.create_future()
        self.frames: list[tuple[int, bytes]] = []
        self.error = ""
        self._head = b""
        self._buf = b""
        self._waiter: asyncio.Future[None] | None = None
        self._in = memoryview(bytearray(READ_SIZE))

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP connection's

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._in

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._in[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            data = self._handshake(data)
            if not data:
                return
        now = time.time_ns()
        buf = self._buf + data if self._buf else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                start = pos + 4
                length = int.from_bytes(buf[pos + 2 : start], "big")
            else:
                start = pos + 10
                length = int.from_bytes(buf[pos + 2 : start], "big")
            end = start + length
            if end > size:
                break
            if b0 == 0x81 and not b1 & 0x80:  # FIN, text, unmasked: the feed's frames
                self.frames.append((now, buf[start:end]))
            elif not self._control(b0, b1, buf[start:end]):
                return
            pos = end
        self._buf = buf[pos:] if pos < size else b""
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = self.error or f"closed: {exc or 'connection lost'}"
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.error))
        self._wake()

    # --- the rest --------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        """Reads the 101 response; returns what came after it (the first frames)."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD:
                self._fail("handshake response too long")
            return b""
        head, rest = self._head[:end].decode("latin-1"), self._head[end + 4 :]
        status, *lines = head.split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines)
        }
        if status.split(" ")[1:2] != ["101"]:
            self._fail(f"handshake refused: {status}")
        elif headers.get("sec-websocket-accept") != accept_key(self.key):
            self._fail("handshake: wrong Sec-WebSocket-Accept")
        elif headers.get("sec-websocket-extensions"):
            self._fail(f"handshake: unasked extension {headers['sec-websocket-extensions']}")
        else:
            self.opened.set_result(None)
            return rest
        return b""

    def _control(self, b0: int, b1: int, payload: bytes) -> bool:
        """A frame other than an unmasked whole text frame; False when it ends the socket."""
        opcode = b0 & 0x0F
        if b0 & 0x80 and not b1 & 0x80 and opcode == Opcode.PING:
            self.send(Frame(Opcode.PONG, payload))
            return True
        if b0 & 0x80 and not b1 & 0x80 and opcode == Opcode.PONG:
            return True
        if opcode == Opcode.CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._fail(f"closed: {code} {payload[2:].decode(errors='replace')}".rstrip())
        else:
            self._fail(f"unexpected frame 0x{b0:02x} 0x{b1:02x} (fragmented, masked or binary)")
        return False

    def _fail(self, error: str) -> None:
        self.error = self.error or error
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(error))
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def send(self, frame: Frame) -> None:
        assert self.transport is not None
        self.transport.write(frame.serialize(mask=True, extensions=[]))

    def send_text(self, text: str) -> None:
        self.send(Frame(Opcode.TEXT, text.encode()))

    async def next_frame(self, after: int, timeout: float) -> bytes:
        """The payload of frame number `after` (0-based), waiting for it at most `timeout` s."""
        deadline = self.loop.time() + timeout
        while len(self.frames) <= after:
            if self.error:
                raise ConnectionError(self.error)
            self._waiter = self.loop.create_future()
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no frame {after} within {timeout} s")
            await asyncio.wait_for(asyncio.shield(self._waiter), remaining)
        return self.frames[after][1]

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send(Frame(Opcode.CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()


async def open_reader(url: str, timeout: float = 30) -> FeedReader:
    """A FeedReader on a thread's feed, once it is streaming: like bench.stack.open_feed, it
    pings and waits for the pong, which the consumer sends once it has joined the thread's
    group (the first frame must be the pong, as there; it is dropped from `frames`)."""
    uri = parse_uri(url)
    if uri.secure:
        raise ValueError("wss:// is not spoken here: the benchmarks listen on 127.0.0.1")
    loop = asyncio.get_running_loop()
    key = generate_key()
    _transport, reader = await asyncio.wait_for(
        loop.create_connection(lambda: FeedReader(key), uri.host, uri.port), timeout
    )
    request = (
        f"GET {uri.resource_name} HTTP/1.1\r\nHost: {uri.host}:{uri.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        assert reader.transport is not None
        reader.transport.write(request.encode())
        await asyncio.wait_for(asyncio.shield(reader.opened), timeout)
        reader.send_text('{"type":"ping"}')
        reply: dict[str, Any] = json.loads(await reader.next_frame(0, timeout))
        if reply.get("type") != "pong":
            raise RuntimeError(f"expected pong, got {reply}")
        del reader.frames[0]
        return reader
    except BaseException:
        reader.close()
        raise
