"""Realtime events for a team: the dashboard's group, and each member's own group (which hears
that their access is gone). The dashboard's events are built by the apps whose rows they show
(apps.agents.events, apps.threads.events)."""

from __future__ import annotations

from typing import Any


def team_group(team_id: int) -> str:
    return f"team-{team_id}"


def member_group(team_id: int, user_id: int) -> str:
    """Every socket a user has open on a team's rows (apps.teams.consumers.MemberConsumer)."""
    return f"team-{team_id}-user-{user_id}"


def access_revoked_event() -> dict[str, Any]:
    return {"type": "team.access_revoked"}
