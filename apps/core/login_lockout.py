"""Login lockout with django-axes, per username and per client address, with backoff.

Axes counts failed logins (on /login/ and /admin/login/ alike: every `authenticate()` with a
request) in its database tables, which every process shares. A username, or an address, with
AXES_FAILURE_LIMIT failures within the cool-off is locked out: its logins are refused, even
with the right password, until the cool-off has passed. The cool-off backs off: each failed
attempt past the limit doubles it (OZWEB_LOGIN_COOLOFF_SECONDS, then twice that, ...; at most
OZWEB_LOGIN_COOLOFF_MAX_SECONDS), and each attempt records its own expiry
(AXES_USE_ATTEMPT_EXPIRATION), so one locked-out name's longer cool-off does not cut short, or
stretch, anyone else's. A locked-out attempt gets `login_lockout_response`: 429 with
Retry-After.
"""

from __future__ import annotations

import math
from datetime import timedelta

from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.core.throttling import request_address


def _live_attempts(request: HttpRequest) -> tuple[QuerySet[AccessAttempt], Q, Q]:
    """The unexpired failed-attempt records of this request's username and of its address,
    and the filters that tell the two apart."""
    username = get_client_username(request)
    address = request_address(request)
    by_username = Q(username=username) if username else Q(pk__in=[])
    by_address = Q(ip_address=address) if address else Q(pk__in=[])
    # One being recorded has no expiry yet: axes asks for the cool-off to set it.
    unexpired = Q(expiration__isnull=True) | Q(expiration__expires_at__gt=timezone.now())
    attempts = AccessAttempt.objects.filter(by_username | by_address).filter(unexpired)
    return attempts, by_username, by_address


def login_cool_off(request: HttpRequest | None) -> timedelta:
    """AXES_COOLOFF_TIME: the base cool-off, doubled for each failure past the limit of the
    request's username or address (whichever has more)."""
    base = settings.OZWEB_LOGIN_COOLOFF_SECONDS
    if request is None:
        return timedelta(seconds=base)
    attempts, by_username, by_address = _live_attempts(request)
    totals = attempts.aggregate(
        username=Sum("failures_since_start", filter=by_username),
        address=Sum("failures_since_start", filter=by_address),
    )
    failures = max(totals["username"] or 0, totals["address"] or 0)
    doublings = min(max(0, failures - settings.AXES_FAILURE_LIMIT), 32)
    return timedelta(seconds=min(base * 2**doublings, settings.OZWEB_LOGIN_COOLOFF_MAX_SECONDS))


def _retry_after(request: HttpRequest) -> int:
    """Whole seconds until the lockout of this request's username and address ends."""
    attempts, _, _ = _live_attempts(request)
    ends = attempts.aggregate(ends=Max("expiration__expires_at"))["ends"]
    if ends is None:
        return math.ceil(login_cool_off(request).total_seconds())
    return max(1, math.ceil((ends - timezone.now()).total_seconds()))


def _in_words(seconds: int) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = math.ceil(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def login_lockout_response(request: HttpRequest, *_: object) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the answer to a locked-out login (axes passes the response and
    credentials too, in an order that depends on the middleware's mode: neither is needed)."""
    seconds = _retry_after(request)
    response = render(
        request,
        "registration/locked_out.html",
        {"retry_after": seconds, "retry_in": _in_words(seconds)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
