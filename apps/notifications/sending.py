"""Sending webhook deliveries: one attempt at a time, retried with exponential backoff.

Scaled out (OZWEB_RUN_DISPATCH=celery) each attempt is the Celery task
`notifications.deliver_webhook`, the next one sent with a countdown; embedded, a small thread
pool in this process makes the attempts and a timer thread waits out the backoff. Each attempt
is a guarded update of the delivery's attempt count, so two workers never make the same one.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from celery import current_app
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from apps.core.errors import ServiceError
from apps.notifications import addresses
from apps.notifications.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from apps.notifications.payloads import signature

logger = logging.getLogger(__name__)

DELIVER_TASK = "notifications.deliver_webhook"
EXCERPT_BYTES = 1024

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def schedule(delivery_pk: int, *, delay: float) -> None:
    """Make the delivery's next attempt after `delay` seconds."""
    if settings.OZWEB_RUN_DISPATCH == "celery":
        current_app.send_task(DELIVER_TASK, args=[delivery_pk], countdown=max(delay, 0))
        return
    if delay <= 0:
        _in_process_pool().submit(_attempt_in_thread, delivery_pk)
        return
    timer = threading.Timer(
        delay, lambda: _in_process_pool().submit(_attempt_in_thread, delivery_pk)
    )
    timer.daemon = True  # a retry still waiting when the process ends is given up
    timer.start()


def schedule_all(delivery_pks: list[int]) -> None:
    for pk in delivery_pks:
        schedule(pk, delay=0)


def _in_process_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ozweb-webhook")
        return _pool


def _attempt_in_thread(delivery_pk: int) -> None:
    close_old_connections()
    try:
        attempt(delivery_pk)
    except Exception:
        logger.exception("webhook delivery %s crashed its attempt", delivery_pk)
    finally:
        close_old_connections()


def backoff_seconds(number: int) -> float:
    """The wait after failed attempt `number` (1, 2, ...): base, 2×base, 4×base, ..."""
    return float(settings.OZWEB_WEBHOOK_BACKOFF_SECONDS * 2 ** (number - 1))


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    excerpt: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def attempt(delivery_pk: int) -> WebhookAttempt | None:
    """Make the delivery's next attempt (idempotent: a finished delivery, or an attempt another
    worker took, is left alone) and schedule the one after it if it failed."""
    delivery = (
        WebhookDelivery.objects.select_related("webhook")
        .filter(pk=delivery_pk, status=DeliveryStatus.PENDING)
        .first()
    )
    if delivery is None:
        return None  # done already, or its webhook was deleted
    number = delivery.attempts + 1
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
    ).update(attempts=number)
    if not claimed:
        return None
    outcome = _post(delivery)
    record = WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        status_code=outcome.status_code,
        ok=outcome.ok,
        error=outcome.error,
        response_excerpt=outcome.excerpt,
        duration_ms=outcome.duration_ms,
    )
    if outcome.ok:
        status, next_at = DeliveryStatus.SUCCEEDED, None
    elif number >= settings.OZWEB_WEBHOOK_MAX_ATTEMPTS:
        status, next_at = DeliveryStatus.FAILED, None
    else:
        delay = backoff_seconds(number)
        status, next_at = DeliveryStatus.PENDING, timezone.now() + timedelta(seconds=delay)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status, next_attempt_at=next_at)
    if status == DeliveryStatus.PENDING:
        schedule(delivery.pk, delay=backoff_seconds(number))
    return record


def _post(delivery: WebhookDelivery) -> Outcome:
    webhook = delivery.webhook
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = addresses.resolve(webhook.url)  # again: the name may resolve elsewhere now
    except ServiceError as exc:
        return Outcome(None, exc.message, "", elapsed())
    parts = urlsplit(webhook.url)
    default_port = 443 if target.scheme == "https" else 80
    ascii_host = target.host.encode("idna").decode()  # resolved already, so it encodes
    name = f"[{ascii_host}]" if ":" in ascii_host else ascii_host  # an IPv6 literal
    host_header = name if target.port == default_port else f"{name}:{target.port}"
    # Connect to the address that was checked; the Host header and TLS name stay the host's.
    pinned = urlunsplit(
        (parts.scheme, f"{target.literal}:{target.port}", parts.path or "/", parts.query, "")
    )
    body = delivery.body.encode()
    headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": "ozweb-webhooks",
        "X-Ozweb-Event": delivery.event,
        "X-Ozweb-Delivery": str(delivery.delivery_id),
    }
    if secret := webhook.secret():
        headers["X-Ozweb-Signature"] = signature(secret, body)
    extensions = {"sni_hostname": ascii_host} if target.scheme == "https" else {}
    try:
        # No proxies from the environment (the address check is about where bytes go) and no
        # redirects (a redirect could point anywhere).
        with (
            httpx.Client(
                timeout=settings.OZWEB_WEBHOOK_TIMEOUT_SECONDS,
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream(
                "POST", pinned, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            excerpt = b""
            for chunk in response.iter_bytes(chunk_size=EXCERPT_BYTES):
                excerpt = chunk[:EXCERPT_BYTES]
                break
            return Outcome(response.status_code, "", excerpt.decode(errors="replace"), elapsed())
    except httpx.TimeoutException:
        return Outcome(
            None, f"No answer within {settings.OZWEB_WEBHOOK_TIMEOUT_SECONDS} s.", "", elapsed()
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], "", elapsed())
    except Exception as exc:  # recorded like any failed attempt: a delivery never sticks
        logger.exception("webhook delivery %s: the attempt failed", delivery.pk)
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], "", elapsed())
