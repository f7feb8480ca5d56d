"""Realtime events for threads: group names, the message payload, and event builders.

A message is rendered once per event, not once per viewer: every consumer forwards the same
HTML fragment (browsers) or JSON payload (API clients).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string

from apps.teams.events import team_group

if TYPE_CHECKING:
    from apps.threads.models import Delivery, Message, Thread

__all__ = ["team_group", "thread_group", "thread_html_group"]


def thread_group(thread_id: int) -> str:
    """API clients (JSON frames)."""
    return f"thread-{thread_id}"


def thread_html_group(thread_id: int) -> str:
    """Browsers on the thread page (HTML fragments)."""
    return f"thread-{thread_id}.html"


def delivery_payload(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "agent": delivery.agent_id,
        "handle": delivery.agent.handle,
        "state": delivery.state,
        "reason": delivery.reason,
        "run": delivery.run_id,
        "updated_at": delivery.updated_at.isoformat(),  # saved rows only: auto_now sets it
    }


def message_payload(message: Message) -> dict[str, Any]:
    if (agent := message.author_agent) is not None:
        author = {
            "type": "agent",
            "id": message.author_agent_id,
            "handle": agent.handle,
            "name": agent.display_name,
        }
    elif (user := message.author_user) is not None:
        author = {
            "type": "user",
            "id": message.author_user_id,
            "handle": user.get_username(),
            "name": message.author_name,
        }
    else:
        author = {"type": "system", "id": None, "handle": "ozweb", "name": "ozweb"}
    return {
        "id": message.pk,
        "thread": message.thread_id,
        "seq": message.seq,
        "kind": message.kind,
        "body": message.body,
        "data": message.data,
        "author": author,
        "run": message.run_id,
        "created_at": message.created_at.isoformat(),
        "deliveries": [delivery_payload(d) for d in message.delivery_rows()],
    }


def message_html(message: Message) -> str:
    return render_to_string("threads/thread.html#message", {"message": message})


def json_item(message: Message) -> dict[str, Any]:
    """The payload, and the websocket frame already encoded: built once per message, each
    viewer sends the same text (json.dumps per viewer was the largest cost after dispatch)."""
    payload = message_payload(message)
    frame = json.dumps({"type": "message.created", "message": payload})
    return {"seq": message.seq, "json": payload, "frame": frame}


def html_item(message: Message) -> dict[str, Any]:
    return {"seq": message.seq, "html": message_html(message)}


def messages_event(messages: list[Message], item: Any) -> dict[str, Any]:
    """One event per batch; `item` is json_item or html_item, for the group it goes to."""
    return {
        "type": "feed.messages",
        "thread": messages[0].thread_id,
        "messages": [item(m) for m in messages],
    }


def thread_activity_event(thread: Thread, messages: list[Message]) -> dict[str, Any]:
    newest = messages[-1]
    return {
        "type": "team.activity",
        "thread": thread.pk,
        "last_seq": thread.last_seq,
        "author_user": newest.author_user_id,
        "html": render_to_string(
            "teams/dashboard.html#activity_row", {"message": newest, "thread": thread, "oob": True}
        ),
    }


def thread_changed_event(thread: Thread) -> dict[str, Any]:
    return {"type": "team.thread", "thread": thread.pk}


def delivery_changed_event(delivery: Delivery) -> dict[str, Any]:
    return {
        "type": "feed.delivery",
        "message": delivery.message_id,
        "delivery": delivery_payload(delivery),
    }
