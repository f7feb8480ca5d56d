"""The bodies webhooks receive: ozweb's JSON envelope, or Slack's `{"text": ...}`."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from apps.notifications.models import WebhookFormat


def webhook_body(
    *, format: str, event: str, team_id: int, data: dict[str, Any], created_at: datetime
) -> str:
    if format == WebhookFormat.SLACK:
        return json.dumps({"text": slack_text(event, data)}, ensure_ascii=False)
    envelope = {
        "event": event,
        "team": team_id,
        "created_at": created_at.isoformat(),
        "data": data,
    }
    return json.dumps(envelope, ensure_ascii=False, default=str)


def signature(secret: str, body: bytes) -> str:
    """The X-Ozweb-Signature header's value: receivers compute the same over the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _at(value: Any) -> str:
    return f"@{value}" if value else "an agent"


def slack_text(event: str, data: dict[str, Any]) -> str:
    """One line a person reads in a Slack channel (events from other apps may lack fields)."""
    if event == "run.finished":
        line = f"{_at(data.get('agent'))}'s run {data.get('run')} {data.get('status')}"
        excerpt = data.get("result") or data.get("error")
        return f"{line}: {excerpt}" if excerpt else f"{line}."
    if event == "message.mention":
        mentioned = [f"@{h}" for h in data.get("mentions", [])]
        who = data.get("author") or "someone"
        where = f" in #{data['thread_name']}" if data.get("thread_name") else ""
        return (
            f"{who} mentioned {', '.join(mentioned) or 'someone'}{where}: {data.get('excerpt', '')}"
        )
    if event == "approval.requested":
        tool = data.get("tool") or "a tool"
        return f"{_at(data.get('agent_handle'))} is waiting for approval to use {tool}."
    if event == "change.opened":
        return f"Change {data.get('change_id', '')} is waiting for review: {data.get('title', '')}"
    if event == "change.merged":
        return f"Change {data.get('change_id', '')} was merged: {data.get('title', '')}"
    return f"ozweb event {event}"
