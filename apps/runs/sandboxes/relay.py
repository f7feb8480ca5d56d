"""The host side of a sandbox's only way out: unix sockets that the worker serves.

A run's container has ``--network none``. The worker that holds the run (the web process
embedded, the Celery worker scaled out) creates a folder of unix sockets for it, mounted
read-only at ``/run/ozweb`` in the container, and serves them from one asyncio loop thread per
process:

- ``ozweb.sock`` relays each connection, byte for byte, to ozweb's agent API and gateway
  (OZWEB_AGENT_API_URL; TLS when it is https). Inside, ``oz-relay`` (docker/agent-tools) listens
  on the container's own loopback and relays to the socket, so code in the container reaches
  ozweb at an http URL of the same host and port, and nothing else: no host port, no other
  container, no internet. Scaled out, a worker host's containers reach ozweb through their
  worker, so they need no route to the web tier.
- ``egress.sock`` (agents with ``network: "egress"``) is an HTTPS (CONNECT) proxy that lets
  through only the agent's ``egress_domains`` on OZWEB_EGRESS_PORTS, never to a loopback,
  private or link-local address (unless OZWEB_EGRESS_ALLOW_PRIVATE, for tests), and logs every
  connection, allowed or refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from apps.agents.egress import domain_allowed

logger = logging.getLogger(__name__)

CONTAINER_SOCKET_DIR = "/run/ozweb"
OZWEB_SOCKET = "ozweb.sock"
EGRESS_SOCKET = "egress.sock"
# Inside the container: where the egress proxy listens (3128 is the proxies' usual port).
PROXY_PORT = 3128
# ozweb's port inside when its own is privileged (an unprivileged user can not bind it).
FALLBACK_PORT = 8765
CHUNK = 64 * 1024

EgressListener = Callable[[dict[str, Any]], None]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """How the container reaches ozweb: its URL inside, what oz-relay listens on, host names."""

    url: str
    listen: tuple[tuple[str, int], ...]
    extra_hosts: dict[str, str] = field(default_factory=dict)


def container_endpoint(upstream: str) -> Endpoint:
    """ozweb as the container sees it: the same host name and port as `upstream` where it can
    (so the URL is unchanged in the embedded default), over plain http to oz-relay."""
    parts = urlsplit(upstream)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    inside_port = port if port >= 1024 else FALLBACK_PORT
    extra_hosts: dict[str, str] = {}
    listen: tuple[tuple[str, int], ...]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not address.is_loopback:
            host = "127.0.0.1"  # the container has no such address: its own loopback stands in
        listen = ((host, inside_port),)
    elif host == "localhost":
        listen = (("127.0.0.1", inside_port), ("::1", inside_port))
    else:
        listen = (("127.0.0.1", inside_port),)
        extra_hosts[host] = "127.0.0.1"
    netloc = f"[{host}]:{inside_port}" if ":" in host else f"{host}:{inside_port}"
    return Endpoint(
        url=urlunsplit(("http", netloc, parts.path, "", "")),
        listen=listen,
        extra_hosts=extra_hosts,
    )


def proxy_port(endpoint: Endpoint) -> int:
    return PROXY_PORT if all(port != PROXY_PORT for _, port in endpoint.listen) else PROXY_PORT + 1


def relay_argv(endpoint: Endpoint, argv: list[str], *, egress: bool) -> list[str]:
    """`argv` behind oz-relay, which listens before it starts the harness."""
    forwards = [f"{h}:{p}={CONTAINER_SOCKET_DIR}/{OZWEB_SOCKET}" for h, p in endpoint.listen]
    if egress:
        forwards.append(f"127.0.0.1:{proxy_port(endpoint)}={CONTAINER_SOCKET_DIR}/{EGRESS_SOCKET}")
    return ["oz-relay", *[a for f in forwards for a in ("--forward", f)], "--", *argv]


def proxy_env(endpoint: Endpoint) -> dict[str, str]:
    """The variables that send a container's HTTPS through the egress proxy (ozweb direct)."""
    proxy = f"http://127.0.0.1:{proxy_port(endpoint)}"
    ozweb_host = urlsplit(endpoint.url).hostname or "127.0.0.1"
    no_proxy = ",".join(dict.fromkeys([ozweb_host, "127.0.0.1", "localhost", "::1"]))
    return {
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def socket_base_dir() -> Path:
    from django.conf import settings

    configured = getattr(settings, "OZWEB_SANDBOX_SOCKET_DIR", "") or ""
    # Short by default: a unix socket's path must fit in 108 bytes.
    return Path(configured or Path(tempfile.gettempdir()) / f"ozweb-sockets-{os.geteuid()}")


# -- the loop ---------------------------------------------------------------------------------


class _Hub:
    """One asyncio loop thread per process, serving the sockets of every run it holds."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="sandbox-relay", daemon=True
        )
        self.thread.start()

    def call(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]


_hub: _Hub | None = None
_hub_lock = threading.Lock()


def hub() -> _Hub:
    global _hub
    with _hub_lock:
        # A forked process (a Celery prefork child) has no copy of the parent's loop thread.
        if _hub is None or _hub.pid != os.getpid():
            _hub = _Hub()
        return _hub


# -- one run's sockets ------------------------------------------------------------------------


class RunRelay:
    """The sockets of one run's container; closed (and removed) with the container."""

    def __init__(self, directory: Path, servers: list[asyncio.AbstractServer]) -> None:
        self.directory = directory
        self._servers = servers
        self._closed = False

    @classmethod
    def create(
        cls,
        *,
        run_id: int,
        instance: str,
        upstream: str,
        owner: tuple[int, int] | None,
        egress_domains: tuple[str, ...] | None,
        on_egress: EgressListener | None = None,
        directory: Path | None = None,
    ) -> RunRelay:
        """Serve a run's sockets in `directory` (a new folder unless re-serving a taken-over
        run's), owned by `owner` (the container's uid:gid) when given."""
        if directory is None:
            base = socket_base_dir()
            base.mkdir(parents=True, exist_ok=True, mode=0o711)
            directory = base / f"{instance}-{run_id}-{secrets.token_hex(4)}"
            directory.mkdir(mode=0o700)
        else:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers: dict[str, Handler] = {OZWEB_SOCKET: forwarder(upstream)}
        if egress_domains is not None:
            handlers[EGRESS_SOCKET] = EgressProxy(run_id, egress_domains, on_egress).handle
        servers = []
        try:
            for name, handler in handlers.items():
                path = directory / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # left by the worker that held the run before
                servers.append(hub().call(asyncio.start_unix_server(handler, path=str(path))))
                path.chmod(0o600)
                if owner is not None:
                    os.chown(path, *owner)
            if owner is not None:
                os.chown(directory, *owner)
        except BaseException:
            cls(directory, servers).close()
            raise
        return cls(directory, servers)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def _close() -> None:
            for server in self._servers:
                server.close()

        with contextlib.suppress(Exception):
            hub().call(_close())
        shutil.rmtree(self.directory, ignore_errors=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError, RuntimeError):
        writer.close()


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        up_writer.close()
        writer.close()


def forwarder(upstream: str) -> Handler:
    """A handler relaying each connection to ozweb at `upstream` (TLS for https)."""
    parts = urlsplit(upstream)
    host = parts.hostname or "127.0.0.1"
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    context = ssl.create_default_context() if tls else None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host if tls else None
            )
        except OSError as exc:
            logger.warning("sandbox relay: ozweb at %s does not answer: %s", upstream, exc)
            writer.close()
            return
        await _splice(reader, writer, up_reader, up_writer)

    return handle


class EgressProxy:
    """An HTTPS (CONNECT) proxy for one run: its agent's allowlist, every connection logged."""

    def __init__(
        self, run_id: int, domains: tuple[str, ...], on_event: EgressListener | None
    ) -> None:
        self.run_id = run_id
        self.domains = domains
        self.on_event = on_event

    def log(self, host: str, port: int, allowed: bool, reason: str) -> None:
        logger.info(
            "run %s egress %s:%s %s%s",
            self.run_id,
            host,
            port,
            "allowed" if allowed else "REFUSED",
            f" ({reason})" if reason else "",
        )
        if self.on_event is not None:
            with contextlib.suppress(Exception):
                self.on_event({"host": host, "port": port, "allowed": allowed, "reason": reason})

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            self.log(parts[1] if len(parts) > 1 else "?", 0, False, "not an HTTPS CONNECT")
            await self.refuse(writer, 405, "only HTTPS (CONNECT) goes out of an ozweb sandbox")
            return
        host, _, port_text = parts[1].rpartition(":")
        host = host.strip("[]").lower().rstrip(".")
        port = int(port_text) if port_text.isdigit() else 0
        address, reason = await self.check(host, port)
        if address is None:
            self.log(host, port, False, reason)
            await self.refuse(writer, 403, f"ozweb egress refused {host}:{port}: {reason}")
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), timeout=15
            )
        except (OSError, TimeoutError) as exc:
            self.log(host, port, False, f"connect failed: {exc}")
            await self.refuse(writer, 502, f"ozweb egress: {host}:{port} does not answer")
            return
        self.log(host, port, True, "")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice(reader, writer, up_reader, up_writer)

    async def check(self, host: str, port: int) -> tuple[str | None, str]:
        """The address to connect to, or None and why not."""
        from django.conf import settings

        if not domain_allowed(host, self.domains):
            return None, "not in the agent's egress_domains"
        ports = getattr(settings, "OZWEB_EGRESS_PORTS", None) or [443]
        if port not in ports:
            return None, f"port {port} is not an egress port ({', '.join(map(str, ports))})"
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            return None, f"does not resolve: {exc}"
        allow_private = bool(getattr(settings, "OZWEB_EGRESS_ALLOW_PRIVATE", False))
        for info in infos:
            address = str(info[4][0])
            if allow_private or ipaddress.ip_address(address).is_global:
                # Connect to the address checked, not to a second lookup of the name.
                return address, ""
        return None, "resolves only to loopback, private or link-local addresses"

    @staticmethod
    async def refuse(writer: asyncio.StreamWriter, status: int, message: str) -> None:
        body = (message + "\n").encode()
        reasons = {403: "Forbidden", 405: "Method Not Allowed", 502: "Bad Gateway"}
        writer.write(
            f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()
        writer.close()
