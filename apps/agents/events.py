"""Realtime events for an agent's card on its team's dashboard (the team group)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from apps.agents.models import Agent


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
