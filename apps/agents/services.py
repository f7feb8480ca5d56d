from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.agents.egress import clean_egress_domains
from apps.agents.events import agent_changed_event, agent_removed_event
from apps.agents.models import (
    HANDLE_PATTERN,
    Agent,
    AgentSecret,
    AgentStatus,
    ApprovalPolicy,
    Harness,
    NetworkPolicy,
)
from apps.agents.selectors import archived_handles
from apps.core import secretbox
from apps.core.errors import Conflict, ServiceError
from apps.core.realtime import broadcast_on_commit
from apps.teams.events import team_group
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_ENV_VALUE = 32 * 1024
EDITABLE_FIELDS = (
    "handle", "display_name", "harness", "model", "instructions", "command", "image",
    "setup_commands", "environment", "run_timeout_seconds", "max_concurrent_runs",
    "approval_policy", "approval_timeout_s",
    "network", "egress_domains",
    "repo",
)  # fmt: skip


def _require_admin(actor: Membership, agent: Agent | None = None) -> None:
    require_role(
        actor,
        Role.ADMIN,
        "Only owners and admins can manage agents.",
        team_id=agent.team_id if agent is not None else None,
    )


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown agent fields: {', '.join(sorted(unknown))}.")
    cleaned = dict(fields)
    if "handle" in cleaned:
        handle = str(cleaned["handle"]).strip().lstrip("@").lower()
        if not re.match(HANDLE_PATTERN, handle):
            raise ServiceError(
                "A handle is 1–40 lowercase letters, digits, - or _, starting with a letter "
                "or digit.",
                field="handle",
            )
        cleaned["handle"] = handle
    if "display_name" in cleaned:
        cleaned["display_name"] = str(cleaned["display_name"]).strip()[:80]
    if "harness" in cleaned and cleaned["harness"] not in Harness.values:
        raise ServiceError(
            f"Unknown harness; choose one of {', '.join(Harness.values)}.", field="harness"
        )
    if "environment" in cleaned:
        cleaned["environment"] = _clean_env(cleaned["environment"], field="environment")
    if "setup_commands" in cleaned:
        commands = cleaned["setup_commands"]
        if isinstance(commands, str):
            commands = [line for line in commands.splitlines() if line.strip()]
        if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
            raise ServiceError("Setup commands are a list of strings.", field="setup_commands")
        cleaned["setup_commands"] = commands
    if "network" in cleaned and cleaned["network"] not in NetworkPolicy.values:
        raise ServiceError(
            f"Unknown network; choose one of {', '.join(NetworkPolicy.values)}.", field="network"
        )
    if "egress_domains" in cleaned:
        try:
            cleaned["egress_domains"] = clean_egress_domains(cleaned["egress_domains"])
        except ValidationError as exc:
            raise ServiceError(" ".join(exc.messages), field="egress_domains") from None
    if "repo" in cleaned:  # an id (or None): _validate_repo checks it is the team's
        cleaned["repo_id"] = cleaned.pop("repo")
    if cleaned.get("command"):
        try:
            shlex.split(cleaned["command"])
        except ValueError as exc:
            raise ServiceError(f"The command does not parse: {exc}.", field="command") from None
    return cleaned


def _clean_env(value: Any, *, field: str) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ServiceError("Give an object of NAME: value pairs.", field=field)
    cleaned: dict[str, str | None] = {}  # None: remove the variable
    for name, item in value.items():
        if not ENV_NAME_RE.match(str(name)):
            raise ServiceError(f"“{name}” is not a valid environment variable name.", field=field)
        if item is not None and not isinstance(item, str | int | float | bool):
            raise ServiceError(f"The value of {name} must be a string.", field=field)
        if item is not None and len(str(item)) > MAX_ENV_VALUE:
            raise ServiceError(f"The value of {name} is over 32 KiB.", field=field)
        cleaned[str(name)] = item if item is None else str(item)
    return cleaned


def _validate_approvals(agent: Agent) -> None:
    """Only harnesses that can ask before a tool call (apps.harnesses: Claude Code, Codex)
    take an approval policy other than "never"."""
    from apps.harnesses import ADAPTERS

    if agent.approval_policy not in ApprovalPolicy.values:
        raise ServiceError(
            f"Unknown approval policy; choose one of {', '.join(ApprovalPolicy.values)}.",
            field="approval_policy",
        )
    adapter = ADAPTERS.get(agent.harness)
    if agent.approval_policy != ApprovalPolicy.NEVER and not (
        adapter and adapter.capabilities.approvals
    ):
        asks = ", ".join(sorted(n for n, a in ADAPTERS.items() if a.capabilities.approvals))
        raise ServiceError(
            f"The {agent.get_harness_display()} harness cannot ask before a tool call, so its "
            f"approval policy must be “never” (harnesses that can ask: {asks}).",
            field="approval_policy",
        )
    if not 1 <= int(agent.approval_timeout_s) <= 7 * 24 * 3600:
        raise ServiceError("The approval timeout is 1 s to 7 days.", field="approval_timeout_s")


def _validate_complete(agent: Agent) -> None:
    _validate_approvals(agent)
    _validate_repo(agent)
    if agent.harness == Harness.COMMAND and not agent.command.strip():
        raise ServiceError("A command agent needs the program to run.", field="command")
    if not agent.display_name:
        agent.display_name = agent.handle


def _validate_repo(agent: Agent) -> None:
    """The repository its runs work in is one of its team's (apps.repos is a higher layer:
    reached through the relation, not imported)."""
    if agent.repo_id is None:
        return
    repository = Agent._meta.get_field("repo").related_model
    assert not isinstance(repository, str)
    if not repository._default_manager.filter(pk=agent.repo_id, team_id=agent.team_id).exists():
        raise ServiceError("No such repository in this team.", field="repo")


def _save(agent: Agent) -> None:
    try:
        with transaction.atomic():
            agent.save()
    except IntegrityError:
        raise Conflict(
            f"The handle @{agent.handle} is already taken in this team.", field="handle"
        ) from None


def _apply_secrets(agent: Agent, secrets: dict[str, Any] | None) -> None:
    """Set (value) or remove (null or empty) secrets by name; values are never read back."""
    for name, value in _clean_env(secrets, field="secrets").items():
        if not value:  # None or ""
            AgentSecret.objects.filter(agent=agent, name=name).delete()
        else:
            AgentSecret.objects.update_or_create(
                agent=agent, name=name, defaults={"ciphertext": secretbox.encrypt(value)}
            )


@transaction.atomic
def agent_create(
    *, actor: Membership, secrets: dict[str, Any] | None = None, **fields: Any
) -> Agent:
    _require_admin(actor)
    cleaned = _clean(fields)
    if not cleaned.get("handle"):
        raise ServiceError("An agent needs a handle.", field="handle")
    if cleaned.get("environment"):
        cleaned["environment"] = {k: v for k, v in cleaned["environment"].items() if v is not None}
    agent = Agent(team=actor.team, created_by=actor.user, **cleaned)
    _validate_complete(agent)
    _save(agent)
    _apply_secrets(agent, secrets)
    _broadcast_agent(agent)
    return agent


@transaction.atomic
def agent_update(
    *, actor: Membership, agent: Agent, secrets: dict[str, Any] | None = None, **fields: Any
) -> Agent:
    _require_admin(actor, agent)
    require_not_archived(agent)
    cleaned = _clean(fields)
    if "environment" in cleaned:
        cleaned["environment"] = {k: v for k, v in cleaned["environment"].items() if v is not None}
    for name, value in cleaned.items():
        setattr(agent, name, value)
    _validate_complete(agent)
    _save(agent)
    _apply_secrets(agent, secrets)
    _broadcast_agent(agent)
    return agent


def require_not_archived(agent: Agent) -> None:
    """An archived agent is history: it is not edited, started or sent messages."""
    if agent.is_archived:
        raise Conflict(
            f"@{agent.handle} is archived: its history stays, but it takes no more work.",
            code="agent_archived",
        )


def refuse_archived_handles(
    *, team_id: int, handles: Iterable[str], field: str, hint: str = ""
) -> None:
    """Handles that named no active agent: if an archived agent had one, refuse the message
    saying so (rather than "unknown")."""
    if archived := archived_handles(team_id=team_id, handles=handles):
        names = ", ".join(f"@{h}" for h in archived)
        verb = "is archived and takes" if len(archived) == 1 else "are archived and take"
        raise Conflict(f"{names} {verb} no messages.{hint}", field=field, code="agent_archived")


@transaction.atomic
def agent_mark_archived(*, actor: Membership, agent: Agent) -> bool:
    """Archive the agent row: out of the team's lists, no more work, its handle free, its
    secrets gone; its runs, messages and artifacts stay. False if it was already archived.

    apps.runs.archiving.agent_archive calls this and stops the agent's live runs in the same
    transaction; on its own it would leave them running.
    """
    _require_admin(actor, agent)
    now = timezone.now()
    # Guarded: of two people archiving at once, one archives.
    archived = Agent.objects.active().filter(pk=agent.pk)
    if not archived.update(archived_at=now, archived_by=actor.user, updated_at=now):
        return False
    agent.archived_at, agent.archived_by, agent.updated_at = now, actor.user, now
    # Credentials for a process that will never start again.
    AgentSecret.objects.filter(agent=agent).delete()
    _broadcast_agent(agent)
    return True


def agent_set_status(*, agent: Agent, status: AgentStatus) -> bool:
    """Move an agent's status; returns False when it already had it (nothing is sent)."""
    changed = Agent.objects.filter(pk=agent.pk).exclude(status=status).update(status=status)
    if changed:
        agent.status = status
        _broadcast_agent(agent)
    return bool(changed)


def agent_secret_values(*, agent: Agent) -> dict[str, str]:
    """Decrypted secrets, for the sandbox that starts the agent's process and nothing else."""
    return {s.name: secretbox.decrypt(s.ciphertext) for s in agent.secrets.all()}


def _broadcast_agent(agent: Agent) -> None:
    if agent.is_archived:  # gone from the team's lists
        broadcast_on_commit(team_group(agent.team_id), agent_removed_event(agent.pk))
    else:
        broadcast_on_commit(team_group(agent.team_id), agent_changed_event(agent))
