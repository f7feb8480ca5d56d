"""Sessions read from the cache and written through to the database (Django's cached_db),
that keep working while the cache does not answer.

Every page and htmx post loads its session: reading it from the cache instead of the
database took a tenth of a post's CPU off (bench/writes.py). Scaled, the cache is Redis, and a
Redis that does not answer must not take the pages down with it (tests/faults): a session
then comes from the database. Deleting one stays strict: a logout whose session the cache
could still serve must fail, not half succeed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.core.cache import BaseCache

from apps.core.cache import process_cache

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        # The cache is looked up on first use, not here: SessionMiddleware makes a session for
        # every request, the agent doors' too (apps.agentapi.parity), which never read it.
        DBStore.__init__(self, session_key)

    @functools.cached_property
    def _cache(self) -> BaseCache:
        return process_cache(settings.SESSION_CACHE_ALIAS)

    def load(self) -> dict[str, Any]:
        try:
            return super().load()
        except Exception:
            # The cache did not answer (the database did: super() read it before it failed
            # to cache what it read, or it never got there): the database's copy.
            logger.warning("session cache unavailable: reading the session from the database")
            return DBStore.load(self)

    def exists(self, session_key: str) -> bool:
        try:
            return super().exists(session_key)
        except Exception:
            return DBStore.exists(self, session_key)
