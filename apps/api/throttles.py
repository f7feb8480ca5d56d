"""The REST API's throttles: per user (token or session) and per address for anonymous
requests, counted in fixed windows in the shared cache (apps.core.throttling), with their
rates in settings (OZWEB_THROTTLE_USER, OZWEB_THROTTLE_ANON). Over the rate: 429 with
Retry-After, from DRF."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.core.throttling import UNKNOWN_ADDRESS, Rate, rate_hit, request_address


class _FixedWindowThrottle(BaseThrottle):
    _wait: int | None = None

    def _hit(self, bucket: str, ident: str, rate: str) -> bool:
        self._wait = rate_hit(bucket, ident, Rate.parse(rate))
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class UserThrottle(_FixedWindowThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        if not request.user.is_authenticated:
            return True
        return self._hit("api-user", str(request.user.pk), settings.OZWEB_THROTTLE_USER)


class AnonymousThrottle(_FixedWindowThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        if request.user.is_authenticated:
            return True
        address = request_address(request._request) or UNKNOWN_ADDRESS
        return self._hit("api-anonymous", address, settings.OZWEB_THROTTLE_ANON)
