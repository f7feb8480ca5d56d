"""The agent verbs as the doors (MCP tools, the REST endpoints behind `oz`) call them: by name,
with keyword arguments, returning a JSON object. One table, so every door offers the same
verbs with the same results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

from apps.agentapi import changes, payloads, selectors, services
from apps.agentapi.context import AgentContext
from apps.agentapi.waits import ChildWait, child_wait_begin
from apps.core.errors import NotFound
from apps.runs.models import Run
from apps.threads.events import message_payload


def delegate(
    ctx: AgentContext, *, to: str, goal: str, wait: bool = False, timeout: float = 600
) -> dict[str, Any] | ChildWait:
    """The delegate verb. With `wait`, what is left once the delegation is made is a
    ChildWait, which the door awaits without holding a thread (apps.agentapi.waits)."""
    delegation = services.delegate(ctx, to=to, goal=goal)
    if wait and (pending := child_wait_begin(delegation=delegation, timeout=timeout)):
        return pending
    return payloads.delegation_status_payload(delegation, child=delegation.run)


VERBS: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in (
        selectors.whoami,
        selectors.list_team,
        services.post_message,
        services.send_message,
        services.read_inbox,
        services.ack,
        delegate,
        selectors.get_run,
        services.put_artifact,
        selectors.get_artifact,
        selectors.list_artifacts,
        selectors.memory_get,
        services.memory_set,
        selectors.memory_list,
        changes.list_changes,
        changes.get_change,
        changes.get_review_comments,
    )
}

# What each verb does, for the MCP tool list and the OpenAPI schema (models read these).
DESCRIPTIONS: dict[str, str] = {
    "whoami": "Who you are: your @handle, team, run id, thread and the run that delegated to you.",
    "list_team": "The agents (with their harness and what they do) and humans of your team.",
    "post_message": (
        "Post a message to your run's thread, or to another thread by id or '#name'. "
        "@mentions in the body address those agents (they are woken) and humans."
    ),
    "send_message": (
        "Send a message to one or more @handles (agents or humans of your team). It is posted "
        "in your run's thread (or the one named) where everyone can see it; an unknown handle "
        "is an error."
    ),
    "read_inbox": (
        "Messages addressed to you that you have not acknowledged, oldest first. Unread ones "
        "become read; pass include_read to see those again. Acknowledge them with ack."
    ),
    "ack": "Acknowledge inbox messages (by their `delivery` ids from read_inbox): done with them.",
    "delegate": (
        "Give another agent (@handle) a goal. It starts a run of its own, a child of yours; "
        "when that run ends its result is sent back to you. Returns the child run at once, or "
        "with wait=true blocks (at most `timeout` seconds) and returns its final result."
    ),
    "get_run": "A run of your team: status, agent, result, error and child runs.",
    "put_artifact": (
        "Store a new version of a team artifact (kind: file, patch, plan, report or link). "
        "Every version is kept; humans review them in ozweb."
    ),
    "get_artifact": "An artifact's latest version (or the one given), with its content.",
    "list_artifacts": "Your team's artifacts, or those of one thread (id or '#name').",
    "memory_get": "A note from your team's shared memory.",
    "memory_set": "Write a note to your team's shared memory (replacing that key's value).",
    "memory_list": "Your team's memory notes, optionally only keys starting with `prefix`.",
    "list_changes": (
        "Your team's changes (a run's branch to review): status open (the default), merged, "
        "closed or all; mine=true for only yours. Each with its files and +/- counts."
    ),
    "get_change": (
        "A change with its unified diff: of `version` (default: the newest) against its base, "
        "or against version `since` (what changed since then)."
    ),
    "get_review_comments": (
        "The line comments humans left on a change (change_id) or an artifact (artifact: its "
        "name): path, line, the code there, the comment and its state (pending, sent, "
        "resolved)."
    ),
}
assert DESCRIPTIONS.keys() == VERBS.keys()

# Results that are not a JSON object yet (the rows a write returns, the lists of reads), as
# every door shows them.
_PRESENT: dict[str, Callable[[Any], dict[str, Any]]] = {
    "post_message": message_payload,
    "send_message": message_payload,
    "read_inbox": lambda deliveries: {
        "messages": [payloads.inbox_entry_payload(d) for d in deliveries]
    },
    "ack": lambda count: {"acked": count},
    "put_artifact": payloads.artifact_version_payload,
    "list_artifacts": lambda artifacts: {"artifacts": artifacts},
    "memory_set": payloads.note_payload,
    "memory_list": lambda notes: {"notes": notes},
    "list_changes": lambda changes: {"changes": changes},
    "get_review_comments": lambda comments: {"comments": comments},
}


def request_max_bytes() -> int:
    """How large a request to the agent API may be: room for the largest artifact, JSON-escaped
    (the artifact service then refuses content over the limit with a clear message)."""
    return 2 * settings.OZWEB_ARTIFACT_MAX_BYTES + 1024 * 1024


def verb_call(*, run: Run, verb: str, arguments: dict[str, Any]) -> dict[str, Any] | ChildWait:
    """Do `verb` as `run`'s agent, in its team: its result, or what is left to await of a
    `delegate(wait=true)`. Raises ServiceError (NotFound, ...)."""
    service = VERBS.get(verb)
    if service is None:
        raise NotFound(f"There is no agent verb {verb!r}. Verbs: {', '.join(VERBS)}.")
    result = service(AgentContext(run), **arguments)
    present = _PRESENT.get(verb)
    return present(result) if present else result
