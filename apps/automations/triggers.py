"""Inbound triggers: creating, changing and removing them.

A trigger's URL is `/hooks/<token>/`; only the token's hash is stored, so the URL is shown
once, at creation. A GitHub trigger also has the secret GitHub signs its deliveries with
(X-Hub-Signature-256), kept encrypted and shown once too. What a call to the URL does is
apps.automations.inbound.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from apps.agents.models import Agent
from apps.agents.services import require_not_archived
from apps.automations.models import Trigger, TriggerKind
from apps.automations.rendering import template_compile
from apps.core.errors import ServiceError
from apps.core.secretbox import encrypt, token_hash
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.models import Thread, ThreadKind
from apps.threads.services import thread_direct_for_agent

TOKEN_PREFIX = "ozh_"  # noqa: S105 -- a prefix, not a secret

# The message body a call posts when the trigger has no template of its own (after the
# mention of the agent). `payload` is the JSON body.
DEFAULT_TEMPLATES: dict[str, str] = {
    TriggerKind.GENERIC: "A webhook call:\n\n```json\n{{ payload_json }}\n```",
    TriggerKind.GITHUB: (
        "{% if payload.comment %}{{ payload.comment.user.login }} commented on"
        "{% else %}{{ payload.issue.user.login }} opened{% endif %} GitHub issue "
        "#{{ payload.issue.number }}{% if payload.repository %} in "
        "{{ payload.repository.full_name }}{% endif %}: "
        "**{{ payload.issue.title }}**\n{{ payload.issue.html_url }}\n\n{{ payload.issue.body }}"
        "{% if payload.comment %}\n\nThe comment ({{ payload.comment.html_url }}):\n\n"
        "{{ payload.comment.body }}{% endif %}"
    ),
}


@dataclass(frozen=True)
class IssuedTrigger:
    """A new trigger, with what is shown only now: the URL's token and the GitHub secret."""

    trigger: Trigger
    token: str
    secret: str | None

    @property
    def path(self) -> str:
        return hook_path(self.token)


def hook_path(token: str) -> str:
    return f"/hooks/{token}/"


def _check_target(
    *, actor: Membership, kind: str, agent: Agent | None, thread: Thread | None
) -> Thread:
    if agent is not None:
        if agent.team_id != actor.team_id:
            raise ServiceError("No such agent in this team.", field="agent")
        require_not_archived(agent)
    elif kind == TriggerKind.GENERIC:
        raise ServiceError("A generic trigger needs the agent it addresses.", field="agent")
    if thread is None:
        if agent is None:
            raise ServiceError(
                "A GitHub trigger for any agent needs the thread it posts to.", field="thread"
            )
        return thread_direct_for_agent(agent=agent)
    if thread.team_id != actor.team_id:
        raise ServiceError("No such thread in this team.", field="thread")
    if thread.kind == ThreadKind.DIRECT and (agent is None or thread.agent_id != agent.pk):
        raise ServiceError(
            "A direct thread belongs to its own agent: choose a channel or this agent's "
            "direct thread.",
            field="thread",
        )
    return thread


def trigger_create(
    *,
    actor: Membership,
    kind: str,
    agent: Agent | None,
    thread: Thread | None = None,
    template: str = "",
    enabled: bool = True,
) -> IssuedTrigger:
    require_role(actor, Role.ADMIN, "Triggers are for admins.")
    if kind not in TriggerKind.values:
        raise ServiceError(f"kind must be one of {', '.join(TriggerKind.values)}.", field="kind")
    template_compile(template)  # a syntax error is refused now, not at the first call
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    secret = secrets.token_hex(32) if kind == TriggerKind.GITHUB else None
    with transaction.atomic():
        thread = _check_target(actor=actor, kind=kind, agent=agent, thread=thread)
        trigger = Trigger.objects.create(
            team=actor.team,
            agent=agent,
            thread=thread,
            kind=kind,
            template=template,
            token_hash=token_hash(token),
            secret_encrypted=encrypt(secret) if secret else "",
            enabled=enabled,
            created_by=actor.user,
        )
    return IssuedTrigger(trigger=trigger, token=token, secret=secret)


def trigger_update(*, actor: Membership, trigger: Trigger, **changes: Any) -> Trigger:
    """Change any of agent, thread, template, enabled (the kind and the URL stay)."""
    require_role(actor, Role.ADMIN, "Triggers are for admins.", team_id=trigger.team_id)
    if "template" in changes:
        template_compile(changes["template"])
        trigger.template = changes["template"]
    if "agent" in changes or "thread" in changes:
        agent = changes.get("agent", trigger.agent)
        thread = changes.get("thread", trigger.thread)
        if "thread" not in changes and thread.kind == ThreadKind.DIRECT:
            thread = None  # a new agent: its own direct thread
        trigger.thread = _check_target(actor=actor, kind=trigger.kind, agent=agent, thread=thread)
        trigger.agent = agent
    if "enabled" in changes:
        trigger.enabled = bool(changes["enabled"])
    trigger.save()
    return trigger


def trigger_delete(*, actor: Membership, trigger: Trigger) -> None:
    require_role(actor, Role.ADMIN, "Triggers are for admins.", team_id=trigger.team_id)
    trigger.delete()
