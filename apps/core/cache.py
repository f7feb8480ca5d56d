"""The process's own instance of a cache backend.

`caches[alias]` makes a backend per asyncio context, that is per request under ASGI, and every
RedisCache instance has a connection pool of its own: each request that read its session
opened a new connection to Redis. The backends ozweb configures (locmem, redis) are safe to
share between threads, so the sessions and the throttles take one instance for the process.
"""

from __future__ import annotations

import functools
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver


@functools.cache
def process_cache(alias: str) -> BaseCache:
    return caches.create_connection(alias)


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":  # tests swap the cache: the next use takes the new one
        process_cache.cache_clear()
