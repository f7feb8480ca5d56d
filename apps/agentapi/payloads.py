"""The JSON objects the agent verbs answer with, built from rows that are already loaded."""

from __future__ import annotations

from typing import Any

from apps.agents.models import Agent
from apps.artifacts.models import Artifact, ArtifactVersion, MemoryNote
from apps.runs.events import run_payload
from apps.runs.models import Run
from apps.teams.models import Membership
from apps.threads.events import message_payload
from apps.threads.models import Delivery


def caller_payload(run: Run) -> dict[str, Any]:
    """whoami: the calling run's agent, team, thread and delegating run."""
    agent, team = run.agent, run.team
    return {
        "handle": agent.handle,
        "display_name": agent.display_name,
        "agent_id": agent.pk,
        "team": {"id": team.pk, "name": team.name},
        "run": run.pk,
        "thread": run.thread_id,
        "thread_label": run.thread.label if run.thread is not None else None,
        "parent_run": run.parent_id,
        "hop": run.hop,
    }


def teammate_payload(agent: Agent, *, caller: Agent) -> dict[str, Any]:
    return {
        "handle": agent.handle,
        "display_name": agent.display_name,
        "harness": agent.harness,
        "status": agent.status,
        "instructions": agent.instructions[:300],
        "you": agent.pk == caller.pk,
    }


def member_payload(membership: Membership) -> dict[str, Any]:
    user = membership.user
    return {
        "handle": user.username,
        "name": user.get_full_name() or user.username,
        "role": membership.role,
    }


def inbox_entry_payload(delivery: Delivery) -> dict[str, Any]:
    return {
        "delivery": delivery.pk,
        "state": delivery.state,
        "thread": delivery.message.thread_id,
        "thread_label": delivery.message.thread.label,
        "message": message_payload(delivery.message),
    }


def delegation_status_payload(delivery: Delivery, *, child: Run | None) -> dict[str, Any]:
    """A delegation (its delivery to the delegate) and its child run, if it has one yet."""
    status: dict[str, Any] = {
        "delegation": delivery.pk,
        "to": delivery.agent.handle,
        "run": child.pk if child else None,
        "status": child.status if child else ("held" if delivery.held else "waiting"),
    }
    if delivery.held:
        status["reason"] = delivery.reason
    if child is not None and child.is_finished:
        status.update(result=child.result_text, error=child.error or None)
    return status


def run_detail_payload(run: Run, *, children: list[int]) -> dict[str, Any]:
    payload = run_payload(run)
    payload.update(
        agent_handle=run.agent.handle,
        result=run.result_text,
        children=children,
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
    )
    return payload


def artifact_version_payload(version: ArtifactVersion) -> dict[str, Any]:
    return {
        "artifact": version.artifact_id,
        "name": version.artifact.name,
        "kind": version.artifact.kind,
        "version": version.version,
        "sha256": version.sha256,
        "size": version.size,
        "media_type": version.media_type,
        "url": version.url,
        "author_run": version.author_run_id,
        "created_at": version.created_at.isoformat(),
    }


def artifact_payload(artifact: Artifact) -> dict[str, Any]:
    return {
        "name": artifact.name,
        "kind": artifact.kind,
        "latest_version": artifact.latest_version,
        "thread": artifact.thread_id,
        "updated_at": artifact.updated_at.isoformat(),
    }


def note_payload(note: MemoryNote) -> dict[str, Any]:
    by = None
    if note.updated_by_agent is not None:
        by = f"@{note.updated_by_agent.handle}"
    elif note.updated_by_user is not None:
        by = note.updated_by_user.username
    return {
        "key": note.key,
        "value": note.value,
        "updated_by": by,
        "updated_at": note.updated_at.isoformat(),
    }
