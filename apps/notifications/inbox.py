"""Each user's inbox: who gets a notification for which domain event, and reading them.

`inbox_on_event` is registered with apps.core.registry and so runs after the transaction that
published the event commits: mentions of the user, approvals waiting (every member and above),
changes waiting for review (every member and above), and the end of runs the user started.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from apps.core.realtime import broadcast_on_commit
from apps.notifications import events
from apps.notifications.models import Notification, NotificationKind
from apps.notifications.selectors import unread_count
from apps.teams.models import Membership, Role

MAX_TITLE = 300


def _path(value: Any) -> str:
    """A path on this site, or "" (an event's url must never send a reader elsewhere)."""
    if not isinstance(value, str) or len(value) > 500 or "\\" in value:
        return ""
    return value if value.startswith("/") and not value.startswith("//") else ""


def _reverse(name: str, pk: Any, fragment: str = "") -> str:
    if not isinstance(pk, int):
        return ""
    try:
        return reverse(name, args=[pk]) + fragment
    except NoReverseMatch:
        return ""


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 1] + "…"


def notifications_create(
    *,
    team_id: int,
    user_ids: Iterable[int],
    kind: NotificationKind,
    title: str,
    url: str,
    data: dict[str, Any],
) -> list[Notification]:
    """One notification per user (each once), pushed to every tab the user has open."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    # Only users still in the team: a removed member's inbox does not fill with its events.
    members = set(
        Membership.objects.filter(team_id=team_id, user_id__in=wanted).values_list(
            "user_id", flat=True
        )
    )
    with transaction.atomic():
        created = Notification.objects.bulk_create(
            [
                Notification(
                    user_id=user_id,
                    team_id=team_id,
                    kind=kind,
                    title=_title(title),
                    url=url,
                    data=data,
                )
                for user_id in wanted
                if user_id in members
            ]
        )
        for notification in created:
            broadcast_on_commit(
                events.user_group(notification.user_id),
                lambda n=notification: events.notification_new_event(  # type: ignore[misc]
                    n, unread=unread_count(user_id=n.user_id)
                ),
            )
    return created


def notification_mark_read(*, user: User, notification: Notification) -> Notification:
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
        _broadcast_unread(user.pk)
    return notification


def notifications_mark_all_read(*, user: User, team_id: int | None = None) -> int:
    rows = Notification.objects.unread().filter(user=user)
    if team_id is not None:
        rows = rows.filter(team_id=team_id)
    marked = rows.update(read_at=timezone.now())
    if marked:
        _broadcast_unread(user.pk)
    return marked


def _broadcast_unread(user_id: int) -> None:
    broadcast_on_commit(
        events.user_group(user_id),
        lambda: events.unread_event(unread=unread_count(user_id=user_id)),
    )


# -- who gets what ------------------------------------------------------------------------------


def _members_and_above(team_id: int) -> list[int]:
    return list(
        Membership.objects.filter(team_id=team_id)
        .at_least(Role.MEMBER)
        .values_list("user_id", flat=True)
    )


def inbox_on_event(event: str, team_id: int, data: dict[str, Any]) -> None:
    if event == "message.mention":
        users = [u for u in data.get("users", []) if u != data.get("author_user")]
        where = f" in #{data['thread_name']}" if data.get("thread_name") else ""
        notifications_create(
            team_id=team_id,
            user_ids=users,
            kind=NotificationKind.MENTION,
            title=f"{data.get('author') or 'Someone'} mentioned you{where}: "
            f"{data.get('excerpt', '')}",
            url=_path(data.get("url")),
            data=data,
        )
    elif event == "run.finished":
        created_by = data.get("created_by")
        if isinstance(created_by, int):
            status = str(data.get("status", "")).replace("_", " ")
            notifications_create(
                team_id=team_id,
                user_ids=[created_by],
                kind=NotificationKind.RUN_FINISHED,
                title=f"@{data.get('agent')}'s run {data.get('run')} {status}",
                url=_path(data.get("url")) or _reverse("run-detail", data.get("run")),
                data=data,
            )
    elif event == "approval.requested":
        # apps.approvals publishes the API's approval (agent is its id) and the agent's handle.
        tool = data.get("tool") or "a tool"
        handle = data.get("agent_handle")
        agent = f"@{handle}" if handle else "An agent"
        message = data.get("message")
        notifications_create(
            team_id=team_id,
            user_ids=_members_and_above(team_id),
            kind=NotificationKind.APPROVAL,
            title=f"{agent} is waiting for approval to use {tool}",
            url=_reverse("thread", data.get("thread"), f"#msg-{message}" if message else ""),
            data=data,
        )
    elif event == "change.opened":
        # apps.repos publishes change_id, title, thread_id, agent_id, ...
        change = data.get("change_id")
        title = data.get("title") or f"change {change}"
        notifications_create(
            team_id=team_id,
            user_ids=_members_and_above(team_id),
            kind=NotificationKind.CHANGE_REVIEW,
            title=f"Waiting for review: {title}",
            url=_reverse("review-change", change) or _reverse("thread", data.get("thread_id")),
            data=data,
        )
