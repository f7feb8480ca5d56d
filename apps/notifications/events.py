"""Realtime events of the inbox: each user's own group, which every tab they have open hears
(apps.notifications.consumers.NotificationConsumer)."""

from __future__ import annotations

from typing import Any

from apps.notifications.models import Notification


def user_group(user_id: int) -> str:
    return f"notifications-user-{user_id}"


def notification_json(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "team": notification.team_id,
        "kind": notification.kind,
        "title": notification.title,
        "url": notification.url,
        "read": notification.read_at is not None,
        "created_at": notification.created_at.isoformat(),
    }


def notification_new_event(notification: Notification, *, unread: int) -> dict[str, Any]:
    return {
        "type": "notifications.new",
        "unread": unread,
        "notification": notification_json(notification),
    }


def unread_event(*, unread: int) -> dict[str, Any]:
    return {"type": "notifications.unread", "unread": unread}
