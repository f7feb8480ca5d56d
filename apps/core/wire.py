"""A live frame written once, as websocket bytes, to every local viewer under daphne.

Through daphne's ASGI send each text frame is encoded, framed by autobahn and handed to
twisted, which arms an epoll writer for the socket and disarms it once the next loop turn has
written the bytes: two `epoll_ctl` calls and twisted's bookkeeping per viewer per frame, most
of what the fan-out costs (bench/feed.py, py-spy: about half of daphne's samples). A server's
text frame is not masked, so its bytes are the same for every viewer: `WireText` builds them
once per frame, and `DaphneWire` writes them with one `send()` on the socket when twisted
holds nothing for it, as asyncio's own transports do. Everything else (what twisted still
holds, a socket that is not plain TCP, compression, oversize frames) takes daphne's own path,
behind what is already queued, so the order on the wire is kept.

Daphne never makes an ASGI send wait: a viewer that stops reading piles its frames up in
twisted's buffer. `DaphneWire` drops a connection holding more than
settings.OZWEB_WS_MAX_BUFFERED_BYTES; its client reconnects and resumes from its last seq.
"""

from __future__ import annotations

import functools
import logging
import struct
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from daphne.server import Server
from django.conf import settings
from twisted.internet import tcp

logger = logging.getLogger(__name__)


class WireText(dict[str, Any]):
    """An ASGI `websocket.send` of `text` that also carries its websocket frame, built on
    first use and shared by every viewer the same message goes to."""

    __slots__ = ("_frame",)

    def __init__(self, text: str) -> None:
        super().__init__(type="websocket.send", text=text)
        self._frame: bytes | None = None

    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self["text"].encode())
        return self._frame


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 §5.2), as a server sends it."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class DaphneWire:
    """Writes `WireText` frames straight to one daphne websocket connection."""

    def __init__(self, server: Server, protocol: Any) -> None:
        self.server = server
        self.protocol = protocol
        self.max_buffered: int = settings.OZWEB_WS_MAX_BUFFERED_BYTES

    @classmethod
    def for_send(cls, send: Any) -> DaphneWire | None:
        """The wire under daphne's ASGI send (`partial(server.handle_reply, protocol)`), or
        None under any other server."""
        if not isinstance(send, functools.partial) or len(send.args) != 1:
            return None
        server = getattr(send.func, "__self__", None)
        if not isinstance(server, Server) or getattr(send.func, "__func__", None) is not (
            Server.handle_reply
        ):
            return None
        protocol = send.args[0]
        if not isinstance(protocol, WebSocketProtocol):
            return None
        return cls(server, protocol)

    def write(self, message: WireText) -> bool:
        """Send the frame; False when it has to take daphne's own path instead."""
        protocol = self.protocol
        connection = self.server.connections.get(protocol)
        if connection is None or connection.get("disconnected"):
            return True  # gone: daphne's send drops it too
        transport = protocol.transport
        if (
            protocol.state != WebSocketProtocol.STATE_OPEN
            or protocol._perMessageCompress is not None
            or protocol.autoFragmentSize
            or type(transport) is not tcp.Server  # TLS and other wrappers frame it again
        ):
            return False
        frame = message.frame()
        if 0 < protocol.maxMessagePayloadSize < len(frame):
            return False  # daphne's path refuses it with the error
        if transport.disconnecting or not transport.connected:
            return True
        held = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        if held:
            if held > self.max_buffered:
                logger.info("dropping a websocket whose viewer left %d bytes unread", held)
                transport.abortConnection()
                return True
            transport.write(frame)  # behind what twisted holds, which it sends in order
            return True
        try:
            sent = transport.socket.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return True  # the connection is lost; twisted's reader tells daphne
        if sent < len(frame):
            transport.write(frame[sent:])
        return True
