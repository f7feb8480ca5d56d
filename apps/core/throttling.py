"""Request rates, counted in Django's cache, and the client's address as the throttles see it.

The cache is Redis when REDIS_URL is set, so every process counts into the same numbers, and
this process's memory otherwise (the embedded install is one process). A rate is a fixed
window: `count` requests per `seconds`, counted under a key named for the window, so a key
never outlives two windows (and a client gets at most twice the rate across a boundary).
A cache that does not answer lets requests through, logged: a throttle must not take the
API down with Redis.

Used by the REST API's throttles (apps.api.throttles), the token checks of the REST API, the
agent doors and the websockets (a refused token counts against its address), and the agent
doors' per-run rate.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core import checks
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

from apps.core.cache import process_cache

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Requests whose address is unknown (or not an IP address) share one count.
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    @functools.cache
    def parse(cls, text: str) -> Rate:
        """A rate as DRF writes one: `<count>/<second|minute|hour|day>` (`"100/minute"`)."""
        count, _, period = text.partition("/")
        try:
            return cls(int(count), PERIODS[period.strip()[:1].lower()])
        except (KeyError, ValueError):
            raise ValueError(f"{text!r} is not a rate such as '100/minute'") from None


RATE_SETTINGS = (
    "OZWEB_THROTTLE_USER",
    "OZWEB_THROTTLE_ANON",
    "OZWEB_THROTTLE_RUN",
    "OZWEB_THROTTLE_AUTH_FAILURES",
)


@checks.register(checks.Tags.security)
def rate_settings_check(**kwargs: object) -> list[checks.CheckMessage]:
    """A rate that does not parse is an error at start-up, not a 500 on every request."""
    errors: list[checks.CheckMessage] = []
    for name in RATE_SETTINGS:
        try:
            Rate.parse(getattr(settings, name))
        except ValueError as exc:
            errors.append(checks.Error(f"{name}: {exc}", id="ozweb.E001"))
    return errors


@dataclass(frozen=True)
class Meter:
    """The count of `ident`'s requests in `bucket`, against `rate`."""

    bucket: str
    ident: str
    rate: Rate

    def key(self, now: float) -> str:
        return f"rate:{self.bucket}:{self.ident}:{int(now // self.rate.seconds)}"

    def wait(self, now: float) -> int:
        """Whole seconds until this window ends (at least 1): for Retry-After."""
        return max(1, math.ceil(self.rate.seconds - now % self.rate.seconds))


@functools.cache
def _redis_for(location: str) -> redis.Redis:
    """A client of the cache's Redis of our own (Django's backend has no public accessor for
    its client), with the same short timeouts: a Redis that does not answer lets requests
    through (rates_hit)."""
    options = settings.CACHES["default"].get("OPTIONS", {})
    return redis.Redis.from_url(
        location,
        socket_connect_timeout=options.get("socket_connect_timeout"),
        socket_timeout=options.get("socket_timeout"),
    )


def _counts(hits: Sequence[Meter], peeks: Sequence[Meter], now: float) -> list[int]:
    """The counts of `hits` after one more request each, then those of `peeks` as they are.

    On Redis in one round trip (Django's incr costs two, and the agent doors count every
    call): INCR with EXPIRE, and GET, pipelined. Django's Redis serializer stores integers
    as they are, so both ways read the same keys.
    """
    backend = process_cache("default")
    if isinstance(backend, RedisCache):
        pipe = _redis_for(settings.CACHES["default"]["LOCATION"]).pipeline(transaction=False)
        for meter in hits:
            key = backend.make_and_validate_key(meter.key(now))
            pipe.incr(key)
            pipe.expire(key, 2 * meter.rate.seconds)
        for meter in peeks:
            pipe.get(backend.make_and_validate_key(meter.key(now)))
        replies = pipe.execute()
        return [int(n) for n in replies[0 : 2 * len(hits) : 2]] + [
            int(n or 0) for n in replies[2 * len(hits) :]
        ]
    counts = []
    for meter in hits:
        key = meter.key(now)
        try:
            counts.append(backend.incr(key))
        except ValueError:  # the window's first request (or its key was evicted)
            added = backend.add(key, 1, timeout=2 * meter.rate.seconds)
            counts.append(1 if added else backend.incr(key))
    found = backend.get_many([meter.key(now) for meter in peeks])
    return counts + [int(found.get(meter.key(now), 0)) for meter in peeks]


def rates_hit(hits: Sequence[Meter], peeks: Sequence[Meter] = ()) -> int | None:
    """Count one request on each of `hits` and look at `peeks` (counting nothing there): None
    if every hit is within its rate and no peek has used its rate up, else the seconds to
    wait (for Retry-After)."""
    now = time.time()
    try:
        counts = _counts(hits, peeks, now)
    except Exception:  # noqa: BLE001 -- let it through: see the module's docstring
        logger.warning("throttles: the cache did not answer; not counted", exc_info=True)
        return None
    over = [m for m, n in zip(hits, counts, strict=False) if n > m.rate.count] + [
        m for m, n in zip(peeks, counts[len(hits) :], strict=True) if n >= m.rate.count
    ]
    return max((meter.wait(now) for meter in over), default=None)


def rate_hit(bucket: str, ident: str, rate: Rate) -> int | None:
    """Count one request of `ident` in `bucket`: None when it is within `rate`, else the
    seconds until the count starts again."""
    return rates_hit([Meter(bucket, ident, rate)])


# -- refused credentials ---------------------------------------------------------------------
# Bad or expired tokens (API tokens, run tokens, websocket `?token=`) count against the
# address they came from, in one count for all doors. Once it is used up, that address gets
# 429 for any token, good or bad, until the window ends: guessing learns nothing more.

AUTH_FAILURES = "auth-failures"


def auth_failures(address: str | None) -> Meter:
    """The count of refused tokens from `address` (a peek at it: is the address refused?)."""
    return Meter(
        AUTH_FAILURES,
        address or UNKNOWN_ADDRESS,
        Rate.parse(settings.OZWEB_THROTTLE_AUTH_FAILURES),
    )


def auth_failed(address: str | None) -> int | None:
    """Count a refused token from `address`: the seconds to wait if that was one too many."""
    return rates_hit([auth_failures(address)])


def auth_refused_wait(address: str | None) -> int | None:
    """After a token was accepted: the seconds `address` must wait if it has used up its
    refused tokens (it is answered 429 all the same, so guessing learns nothing)."""
    return rates_hit([], [auth_failures(address)])


# -- the client's address --------------------------------------------------------------------


def client_address(remote_addr: str | None, forwarded_for: str | None) -> str | None:
    """The client's IP address: the peer's, or with OZWEB_PROXY_COUNT reverse proxies in front,
    the one the outermost of them put in X-Forwarded-For (what a client writes there itself
    is to its left, and ignored). None when it is not an IP address."""
    address = remote_addr
    proxies = settings.OZWEB_PROXY_COUNT
    if proxies > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        address = hops[-min(proxies, len(hops))]
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def request_address(request: HttpRequest) -> str | None:
    """The client address of a Django (or DRF) request."""
    meta = request.META
    return client_address(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))


def scope_address(
    client: Iterable[object] | None, headers: Iterable[tuple[bytes, bytes]]
) -> str | None:
    """The client address of an ASGI connection, from its scope's `client` and `headers`."""
    remote = next(iter(client), None) if client else None
    forwarded = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
    return client_address(remote if isinstance(remote, str) else None, ",".join(forwarded) or None)
