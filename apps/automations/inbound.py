"""A call to a trigger's URL: from the POSTed payload to a message that wakes an agent.

generic: the JSON body is rendered into the trigger's template and posted in its thread,
mentioning its agent. github: the signature (X-Hub-Signature-256, HMAC-SHA256 of the body with
the trigger's secret) is checked first; `issues` (opened) and `issue_comment` (created) events
whose text mentions @<handle> of an agent of the team hand that agent the issue; any other
event, or one that mentions no agent, is logged and answered 202 with a `note` and no message.

Only the trigger's agents are addressed (the mentioned ones, for github): other @names in a
payload are text, so an outsider's payload cannot message anyone else. Every call, whatever
its answer, is a TriggerCall row, listed on the trigger's page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import transaction

from apps.agents.models import Agent
from apps.agents.services import require_not_archived
from apps.automations.models import Trigger, TriggerCall, TriggerKind
from apps.automations.rendering import template_compile, template_render
from apps.automations.triggers import DEFAULT_TEMPLATES
from apps.core.errors import ServiceError
from apps.core.json_depth import json_loads
from apps.core.secretbox import decrypt
from apps.threads.mentions import extract_mentions
from apps.threads.models import Message
from apps.threads.services import NewMessage, messages_append

GITHUB_EVENTS = {"issues": "opened", "issue_comment": "created"}
TRUNCATED = "\n\n… (truncated: the message limit was reached)"


def hook_max_bytes() -> int:
    return int(settings.OZWEB_HOOK_MAX_BYTES)


@dataclass(frozen=True)
class InboundCall:
    """What the door read of the request. `body` is None when it was over the limit."""

    body: bytes | None
    content_type: str = ""
    event: str = ""  # X-GitHub-Event
    signature: str = ""  # X-Hub-Signature-256
    address: str | None = None


@dataclass
class HookAnswer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    message: Message | None = None
    # A bad signature: the door counts it against the caller's address, as a refused token.
    refused_credential: bool = False


def trigger_receive(*, trigger: Trigger, call: InboundCall) -> HookAnswer:
    """Answer one call (and log it)."""
    try:
        answer = _answer(trigger, call)
    except ServiceError as exc:
        answer = HookAnswer(exc.status_code, {"detail": exc.message, "code": exc.code})
        answer.summary = exc.message
    TriggerCall.objects.create(
        trigger=trigger,
        status_code=answer.status,
        event=call.event[:100],
        summary=answer.summary[:500],
        address=call.address,
        message=answer.message,
    )
    return answer


def _answer(trigger: Trigger, call: InboundCall) -> HookAnswer:
    if call.body is None:
        limit = hook_max_bytes()
        raise _Refusal(413, f"The payload is over {limit:,} bytes.", "too_large")
    if not trigger.enabled:
        raise _Refusal(409, "This trigger is disabled.", "disabled")
    if trigger.kind == TriggerKind.GITHUB:
        return _github(trigger, call)
    payload = _payload(call.body)
    agent = trigger.agent
    if agent is None:  # kept by the services for generic triggers; say so if it ever is not
        raise _Refusal(409, "This trigger has no agent.", "no_agent")
    return _post(trigger, payload, agents=[agent], event=call.event)


def _github(trigger: Trigger, call: InboundCall) -> HookAnswer:
    assert call.body is not None
    if not _signature_valid(trigger, call.body, call.signature):
        answer = HookAnswer(
            401,
            {
                "detail": "The X-Hub-Signature-256 signature does not match.",
                "code": "bad_signature",
            },
            summary="Refused: the signature does not match.",
            refused_credential=True,
        )
        return answer
    if call.content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(call.body.decode("utf-8", "replace"))
        payload = _payload((form.get("payload") or [""])[0].encode())
    else:
        payload = _payload(call.body)
    if call.event == "ping":
        return _note("GitHub reached this trigger (ping).")
    action = payload.get("action") if isinstance(payload, dict) else None
    if GITHUB_EVENTS.get(call.event) != action:
        handled = ", ".join(f"{e} ({a})" for e, a in GITHUB_EVENTS.items())
        return _note(f"Ignored {call.event or 'an event'} ({action}): only {handled} are handled.")
    assert isinstance(payload, dict)
    text = _github_text(payload, call.event)
    handles = extract_mentions(text)
    agents = Agent.objects.active().filter(team_id=trigger.team_id, handle__in=handles)
    if trigger.agent_id is not None:
        agents = agents.filter(pk=trigger.agent_id)
    found = sorted(agents, key=lambda a: handles.index(a.handle))
    if not found:
        return _note("Ignored: the text mentions no agent of this team that this trigger serves.")
    return _post(trigger, payload, agents=found, event=call.event)


def _github_text(payload: dict[str, Any], event: str) -> str:
    def text_of(obj: Any, *keys: str) -> str:
        values = [obj.get(k) for k in keys] if isinstance(obj, dict) else []
        return "\n".join(v for v in values if isinstance(v, str))

    if event == "issue_comment":
        return text_of(payload.get("comment"), "body")
    return text_of(payload.get("issue"), "title", "body")


def _signature_valid(trigger: Trigger, body: bytes, header: str) -> bool:
    if not trigger.secret_encrypted or not header.startswith("sha256="):
        return False
    secret = decrypt(trigger.secret_encrypted).encode()
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))


def _payload(body: bytes) -> Any:
    try:
        return json_loads(body)
    except ValueError as exc:  # not JSON, not UTF-8, or nested too deep
        raise _Refusal(400, f"The body is not JSON: {exc}"[:300], "invalid") from None


def _note(note: str) -> HookAnswer:
    return HookAnswer(202, {"message": None, "note": note}, summary=note)


def _post(trigger: Trigger, payload: Any, *, agents: list[Agent], event: str) -> HookAnswer:
    for agent in agents:
        require_not_archived(agent)
    template = template_compile(trigger.template or DEFAULT_TEMPLATES[trigger.kind])
    rendered = template_render(
        template,
        {
            "payload": payload,
            "payload_json": json.dumps(payload, indent=2, ensure_ascii=False),
            "event": event,
        },
    )
    mentions = " ".join(f"@{a.handle}" for a in agents)
    body = _fit(f"{mentions} {rendered.replace(chr(0), '')}".rstrip())
    with transaction.atomic():
        [message] = messages_append(
            thread=trigger.thread,
            items=[
                NewMessage(
                    body=body,
                    data={"trigger": trigger.pk, "event": event}
                    if event
                    else {"trigger": trigger.pk},
                    recipients=agents,
                    # Names in a payload are not ozweb's: notify no member by them.
                    mentioned_users={},
                )
            ],
        )
    handled = ", ".join(f"@{a.handle}" for a in agents)
    return HookAnswer(
        202, {"message": message.pk}, summary=f"Posted for {handled}.", message=message
    )


def _fit(body: str) -> str:
    """The body as valid UTF-8 (JSON may carry lone surrogates), cut to the message limit (a
    payload may be far longer than a message)."""
    limit = settings.OZWEB_MAX_MESSAGE_BYTES
    encoded = body.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return encoded.decode("utf-8")
    room = limit - len(TRUNCATED.encode())
    return encoded[:room].decode("utf-8", "ignore") + TRUNCATED


class _Refusal(ServiceError):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message, code=code)
        self.status_code = status
