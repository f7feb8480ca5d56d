"""Realtime events for a team's dashboard: group name and event builders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string

if TYPE_CHECKING:
    from apps.agents.models import Agent


def team_group(team_id: int) -> str:
    return f"team-{team_id}"


def agent_payload(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.pk,
        "handle": agent.handle,
        "display_name": agent.display_name,
        "harness": agent.harness,
        "status": agent.status,
    }


def agent_changed_event(agent: Agent) -> dict[str, Any]:
    return {
        "type": "team.agent",
        "agent": agent_payload(agent),
        "html": render_to_string("teams/dashboard.html#agent_row", {"agent": agent, "oob": True}),
    }


def agent_removed_event(agent_id: int) -> dict[str, Any]:
    return {"type": "team.agent_removed", "agent_id": agent_id}
