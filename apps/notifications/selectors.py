"""Reads of the inbox and the webhooks, scoped to the acting user: another user's notification
or another team's webhook is a 404."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch, QuerySet

from apps.core.errors import NotFound
from apps.notifications.models import Notification, Webhook, WebhookAttempt, WebhookDelivery
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team


def notification_list(
    *, user: User | AnonymousUser, unread: bool | None = None, team_id: int | None = None
) -> QuerySet[Notification]:
    """The user's notifications, newest first, of the teams they are still in."""
    if not user.is_authenticated:
        return Notification.objects.none()
    rows = Notification.objects.filter(user=user, team__memberships__user=user)
    if unread is True:
        rows = rows.unread()
    elif unread is False:
        rows = rows.filter(read_at__isnull=False)
    if team_id is not None:
        rows = rows.filter(team_id=team_id)
    return rows.order_by("-id")


def unread_count(*, user_id: int) -> int:
    return (
        Notification.objects.unread()
        .filter(user_id=user_id, team__memberships__user_id=user_id)
        .count()
    )


def access_notification(*, user: User | AnonymousUser, notification_id: int) -> Notification:
    notification = notification_list(user=user).filter(pk=notification_id).first()
    if notification is None:
        raise NotFound()
    return notification


def webhook_list(*, team_id: int) -> QuerySet[Webhook]:
    return Webhook.objects.filter(team_id=team_id).order_by("id")


def access_webhook(
    *, user: User | AnonymousUser, webhook_id: int, role: Role = Role.ADMIN
) -> tuple[Membership, Webhook]:
    """The webhook and the user's membership of its team (webhooks are for admins and owners:
    their URLs often carry a token)."""
    webhook = Webhook.objects.filter(pk=webhook_id).first()
    if webhook is None:
        raise NotFound()
    actor = access_team(user=user, team_id=webhook.team_id, role=role)
    return actor, webhook


def delivery_list(*, webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """The webhook's deliveries, newest first, each with its attempts in order."""
    return (
        WebhookDelivery.objects.filter(webhook=webhook)
        .prefetch_related(
            Prefetch("attempt_list", queryset=WebhookAttempt.objects.order_by("number"))
        )
        .order_by("-id")
    )
