"""Celery tasks (scaled mode): thin, named, idempotent."""

from __future__ import annotations

from celery import shared_task

from apps.notifications.sending import DELIVER_TASK, attempt


@shared_task(name=DELIVER_TASK, acks_late=True)
def deliver_webhook_task(delivery_id: int) -> None:
    # Idempotent: an attempt another worker made, or a finished delivery, is left alone.
    attempt(delivery_id)
