"""Rates counted in fixed windows of the shared cache, and the client address behind proxies."""

import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from apps.core import throttling
from apps.core.throttling import Meter, Rate, client_address, rate_hit, rates_hit
from tests.conftest import REDIS_URL, require_service


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(1_000_040.25)  # 20.25 s into a minute (1_000_020 is a multiple of 60)
    monkeypatch.setattr(throttling, "time", clock)
    return clock


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/minute", Rate(100, 60)),
        ("5/s", Rate(5, 1)),
        ("30/hour", Rate(30, 3600)),
        ("1/day", Rate(1, 86400)),
    ],
)
def test_rates_are_written_as_drf_writes_them(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["100", "fast/minute", "10/fortnight"])
def test_a_rate_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="is not a rate"):
        Rate.parse(text)


def used_up(bucket: str, ident: str, rate: Rate) -> int | None:
    return rates_hit([], peeks=[Meter(bucket, ident, rate)])


def test_hits_are_counted_per_ident_until_the_window_ends(clock):
    rate = Rate(2, 60)

    assert [rate_hit("b", "x", rate) for _ in range(3)] == [None, None, 40]
    assert used_up("b", "x", rate) == 40
    assert rate_hit("b", "y", rate) is None and used_up("b", "y", rate) is None
    assert rate_hit("other", "x", rate) is None

    clock.now += 39.5  # the last half second of the window: still a whole second to wait
    assert rate_hit("b", "x", rate) == 1
    clock.now += 0.5
    assert used_up("b", "x", rate) is None
    assert rate_hit("b", "x", rate) is None


def test_hits_and_peeks_in_one_call_wait_for_the_longest(clock):
    minute, hour = Rate(1, 60), Rate(1, 3600)
    rate_hit("b", "x", hour)
    rate_hit("b", "y", minute)

    # Both over: y's minute ends in 40 s, x's hour in 760 s (2840.25 s into it).
    assert rates_hit([Meter("b", "y", minute)], peeks=[Meter("b", "x", hour)]) == 760
    # A peek counts nothing.
    assert rates_hit([], peeks=[Meter("b", "z", minute)]) is None
    assert rates_hit([Meter("b", "z", minute)]) is None


def test_a_cache_that_does_not_answer_lets_requests_through(monkeypatch, caplog):
    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("redis is restarting")

            return fail

    monkeypatch.setattr(throttling, "process_cache", lambda alias: Down())
    rate = Rate(1, 60)

    assert [rate_hit("b", "x", rate) for _ in range(3)] == [None, None, None]
    assert used_up("b", "x", rate) is None
    assert "the cache did not answer" in caplog.text


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "address"),
    [
        (0, "10.0.0.1", None, "10.0.0.1"),
        (0, "10.0.0.1", "203.0.113.7", "10.0.0.1"),  # no proxy: the header is the client's
        (1, "10.0.0.1", "203.0.113.7", "203.0.113.7"),
        (1, "10.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (2, "10.0.0.1", "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (2, "10.0.0.1", "203.0.113.7", "203.0.113.7"),  # fewer hops than proxies
        (1, "10.0.0.1", None, "10.0.0.1"),
        (0, "0:0:0:0:0:0:0:1", None, "::1"),
        (1, "10.0.0.1", "not-an-address", None),
        (0, None, None, None),
        (0, "", None, None),
    ],
)
def test_the_client_address(settings, proxies, remote, forwarded, address):
    settings.OZWEB_PROXY_COUNT = proxies

    assert client_address(remote, forwarded) == address


def test_a_rate_setting_that_does_not_parse_fails_the_system_check(settings):
    from apps.core.throttling import rate_settings_check

    assert rate_settings_check() == []
    settings.OZWEB_THROTTLE_RUN = "fast"

    [error] = rate_settings_check()
    assert error.id == "ozweb.E001" and "OZWEB_THROTTLE_RUN" in error.msg


@pytest.fixture
def redis_cache(settings) -> Iterator[Any]:
    """Django's cache on the real Redis, under a key prefix of its own (removed after)."""
    from django.core.cache import caches

    require_service(REDIS_URL, "Redis")
    prefix = f"ozweb-test-throttle-{uuid.uuid4().hex[:8]}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    backend = caches["default"]
    yield backend
    client = backend._cache.get_client(write=True)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.mark.redis
def test_on_redis_a_call_is_counted_in_one_round_trip_with_an_expiry(redis_cache, clock):
    rate = Rate(2, 60)
    meter = Meter("b", "x", rate)
    client = redis_cache._cache.get_client(write=True)
    sent = []
    execute = type(client.pipeline()).execute

    def counted(pipe, *args, **kwargs):
        sent.append(len(pipe.command_stack))
        return execute(pipe, *args, **kwargs)

    with mock.patch.object(type(client.pipeline()), "execute", counted):
        answers = [rates_hit([meter], peeks=[Meter("b", "y", rate)]) for _ in range(3)]

    assert answers == [None, None, 40]
    assert sent == [3, 3, 3]  # INCR, EXPIRE, GET: one round trip each time
    key = redis_cache.make_and_validate_key(meter.key(clock.now))
    assert 0 < client.ttl(key) <= 120
    assert redis_cache.get(meter.key(clock.now)) == 3  # Django reads what the pipeline wrote
    assert used_up("b", "x", rate) == 40
