"""Realtime events for a team: the dashboard's group. Its events are built by the apps whose
rows they show (apps.agents.events, apps.threads.events)."""

from __future__ import annotations


def team_group(team_id: int) -> str:
    return f"team-{team_id}"
