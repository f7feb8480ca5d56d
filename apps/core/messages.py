"""Django's message storage (cookie, then session), made when a request first uses it.

MessageMiddleware gives every request a storage, and Django's FallbackStorage makes its
cookie and session backends at once (the cookie one a signer from SECRET_KEY: ~70 µs a
request). The agent doors, the REST API and the websockets' HTTP never show messages; pages
that do get the same storage, made on first use.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.messages.storage.base import BaseStorage
from django.contrib.messages.storage.fallback import FallbackStorage


class LazyFallbackStorage(FallbackStorage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        BaseStorage.__init__(self, *args, **kwargs)
        self._args, self._kwargs = args, kwargs
        self._used_storages: set[BaseStorage] = set()

    @functools.cached_property
    def storages(self) -> list[BaseStorage]:
        return [cls(*self._args, **self._kwargs) for cls in self.storage_classes]
