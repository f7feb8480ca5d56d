"""The sidebar's inbox badge: its count when the page is rendered (notifications.js keeps it
live over /ws/notifications/)."""

from __future__ import annotations

from typing import Any

from django import template

from apps.notifications.selectors import unread_count
from apps.teams.models import Membership, Role

register = template.Library()


@register.simple_tag(takes_context=True)
def inbox_unread(context: dict[str, Any]) -> int:
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return 0
    return unread_count(user_id=user.pk)


@register.simple_tag(takes_context=True)
def manages_webhooks(context: dict[str, Any], team: Any) -> bool:
    """Whether the signed-in user may see the team's webhooks (admins and owners)."""
    user = context.get("user")
    if user is None or not user.is_authenticated or team is None:
        return False
    return Membership.objects.filter(team=team, user=user).at_least(Role.ADMIN).exists()
