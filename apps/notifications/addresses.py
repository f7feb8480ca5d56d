"""Where a webhook may point: public addresses only (no server-side request forgery).

The host is resolved and every address it has is checked, when the webhook is saved and again
before each attempt; the attempt then connects to the address that was checked, so a name
that re-resolves to a private address between the check and the connection (DNS rebinding)
gets nowhere. OZWEB_ALLOW_PRIVATE_WEBHOOKS=true lifts the check (tests, a private network).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from apps.core.errors import ServiceError

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A webhook URL, parsed, with the address an attempt connects to."""

    scheme: str
    host: str
    port: int
    address: IPAddress

    @property
    def literal(self) -> str:
        """The address as it goes in a URL (IPv6 in brackets)."""
        return f"[{self.address}]" if self.address.version == 6 else str(self.address)


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return address.is_global and not address.is_multicast


def check_url(url: str, *, field: str = "url") -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL, or ServiceError saying what is wrong with it."""
    if not url.strip():
        raise ServiceError("Give the URL to POST events to.", field=field)
    if len(url) > MAX_URL_LENGTH:
        raise ServiceError(f"The URL is longer than {MAX_URL_LENGTH} characters.", field=field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ServiceError("That is not a valid URL.", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError("The URL must start with http:// or https://.", field=field)
    if parts.username is not None or parts.password is not None:
        raise ServiceError("Put no user name or password in the URL.", field=field)
    if parts.fragment:
        raise ServiceError("A webhook URL has no #fragment.", field=field)
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(url: str, *, field: str = "url") -> Target:
    """The URL's target: its host resolved, every address checked (unless private ones are
    allowed), the first one to connect to."""
    scheme, host, port = check_url(url, field=field)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # ValueError: e.g. a NUL in the name
        raise ServiceError(f"The host {host} does not resolve.", field=field) from None
    addresses: list[IPAddress] = []
    for info in infos:
        # The scope of a link-local IPv6 address ("fe80::1%eth0") is not part of the address.
        literal = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(literal)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ServiceError(f"The host {host} does not resolve.", field=field)
    if not settings.OZWEB_ALLOW_PRIVATE_WEBHOOKS:
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise ServiceError(
                f"The host {host} resolves to a loopback, private or link-local address "
                f"({refused[0]}); webhooks go to public addresses only.",
                field=field,
                code="private_address",
            )
    return Target(scheme=scheme, host=host, port=port, address=addresses[0])
