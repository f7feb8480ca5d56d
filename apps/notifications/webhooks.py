"""A team's outgoing webhooks: set up by admins, and one delivery per subscribed event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core import secretbox, sql
from apps.core.errors import ServiceError
from apps.notifications import addresses, sending
from apps.notifications.models import (
    WEBHOOK_EVENTS,
    Webhook,
    WebhookDelivery,
    WebhookFormat,
)
from apps.notifications.payloads import webhook_body
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role

MAX_SECRET_LENGTH = 256
MAX_WEBHOOKS_PER_TEAM = 50
ADMINS_ONLY = "Only admins and owners manage webhooks."
_UNSET: Any = object()


def _check_events(events: Sequence[str]) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ServiceError("Subscribe to at least one event.", field="events")
    unknown = [e for e in events if e not in WEBHOOK_EVENTS]
    if unknown:
        raise ServiceError(
            f"Unknown event {unknown[0]!r}; the events are {', '.join(WEBHOOK_EVENTS)}.",
            field="events",
        )
    return [e for e in WEBHOOK_EVENTS if e in events]  # each once, in a fixed order


def _check_format(format: str) -> str:
    if format not in WebhookFormat.values:
        raise ServiceError("The format is json or slack.", field="format")
    return format


def _encrypted_secret(secret: str) -> str:
    if len(secret) > MAX_SECRET_LENGTH:
        raise ServiceError(
            f"The secret is longer than {MAX_SECRET_LENGTH} characters.", field="secret"
        )
    return secretbox.encrypt(secret) if secret else ""


def webhook_create(
    *,
    actor: Membership,
    url: str,
    events: Sequence[str],
    secret: str = "",
    format: str = WebhookFormat.JSON,
) -> Webhook:
    require_role(actor, Role.ADMIN, ADMINS_ONLY)
    events = _check_events(events)
    format = _check_format(format)
    addresses.resolve(url)
    if Webhook.objects.filter(team=actor.team).count() >= MAX_WEBHOOKS_PER_TEAM:
        raise ServiceError(f"A team has at most {MAX_WEBHOOKS_PER_TEAM} webhooks.", field="url")
    return Webhook.objects.create(
        team=actor.team,
        url=url,
        events=events,
        format=format,
        secret_encrypted=_encrypted_secret(secret),
        created_by=actor.user,
    )


def webhook_update(
    *,
    actor: Membership,
    webhook: Webhook,
    url: str = _UNSET,
    events: Sequence[str] = _UNSET,
    secret: str = _UNSET,
    format: str = _UNSET,
    enabled: bool = _UNSET,
) -> Webhook:
    """Change what is given; a secret given as "" removes it (deliveries go unsigned)."""
    require_role(actor, Role.ADMIN, ADMINS_ONLY, team_id=webhook.team_id)
    if url is not _UNSET:
        addresses.resolve(url)
        webhook.url = url
    if events is not _UNSET:
        webhook.events = _check_events(events)
    if format is not _UNSET:
        webhook.format = _check_format(format)
    if secret is not _UNSET:
        webhook.secret_encrypted = _encrypted_secret(secret)
    if enabled is not _UNSET:
        webhook.enabled = bool(enabled)
    webhook.save()
    return webhook


def webhook_delete(*, actor: Membership, webhook: Webhook) -> None:
    require_role(actor, Role.ADMIN, ADMINS_ONLY, team_id=webhook.team_id)
    webhook.delete()  # its deliveries and attempts go with it; a queued attempt finds nothing


def deliveries_create(*, event: str, team_id: int, data: dict[str, Any]) -> list[WebhookDelivery]:
    """One delivery per enabled webhook of the team that subscribes to `event`, each sent once
    this commits. (A team has few webhooks: they are filtered here rather than by a JSON
    lookup that SQLite lacks.)"""
    # Most teams have no webhook, and this runs on every message that mentions an agent: a
    # plain query says so in ~0.1 ms, where building the ORM's took ~1 ms (bench/writes.py).
    if not sql.row(
        "SELECT 1 FROM {Webhook} WHERE {Webhook.team} = %s AND {Webhook.enabled} = %s LIMIT 1",
        [team_id, True],
        Webhook=Webhook,
    ):
        return []
    hooks = [h for h in Webhook.objects.filter(team_id=team_id, enabled=True) if event in h.events]
    if not hooks:
        return []
    now = timezone.now()
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    webhook=hook,
                    delivery_id=uuid.uuid4(),
                    event=event,
                    body=webhook_body(
                        format=hook.format, event=event, team_id=team_id, data=data, created_at=now
                    ),
                    next_attempt_at=now,
                )
                for hook in hooks
            ]
        )
        # bulk_create sets the ids on PostgreSQL and SQLite (RETURNING) alike.
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: sending.schedule_all(ids))
    return deliveries


def webhooks_on_event(event: str, team_id: int, data: dict[str, Any]) -> None:
    if event in WEBHOOK_EVENTS:
        deliveries_create(event=event, team_id=team_id, data=data)
