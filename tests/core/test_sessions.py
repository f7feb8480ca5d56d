"""Sessions come from the cache, written through to the database, and keep working while
the cache does not answer (scaled mode's Redis down)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache

from apps.core.sessions import SessionStore
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


def test_a_session_is_read_from_the_cache_and_kept_in_the_database(owner, team):
    web = web_client_for(owner.user)
    key = web.cookies["sessionid"].value

    assert web.get(f"/teams/{team.pk}/").status_code == 200
    assert cache.get(f"django.contrib.sessions.cached_db{key}") is not None
    assert Session.objects.filter(session_key=key).exists()


def test_pages_still_load_their_session_when_the_cache_does_not_answer(owner, team, settings):
    web = web_client_for(owner.user)

    settings.CACHES = DEAD_REDIS
    page = web.get(f"/teams/{team.pk}/")

    assert page.status_code == 200  # logged in: the session came from the database
    assert owner.user.username in page.content.decode()


def test_a_logout_while_the_cache_does_not_answer_fails_rather_than_half_succeeds(
    owner, team, settings
):
    web = web_client_for(owner.user)
    settings.CACHES = DEAD_REDIS

    # The cache may still serve the session when it comes back: the logout must not say done.
    with pytest.raises(Exception, match="(?i)connect"):  # redis' ConnectionError
        web.post("/logout/")


def test_every_request_shares_one_cache_backend(settings):
    """`caches[...]` makes a backend per asyncio context (a request, under ASGI), and each
    RedisCache has a connection pool of its own: the sessions keep one for the process."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
        }
    }
    with ThreadPoolExecutor(4) as pool:
        backends = list(pool.map(lambda _: SessionStore()._cache, range(8)))
    assert all(b is backends[0] for b in backends)
    assert isinstance(backends[0], RedisCache)

    settings.CACHES = DEAD_REDIS  # a settings change is seen by the next session
    assert SessionStore()._cache is not backends[0]
    assert SessionStore()._cache._servers == ["redis://127.0.0.1:9/0"]
