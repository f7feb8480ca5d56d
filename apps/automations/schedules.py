"""Schedules: creating, changing and removing them, and when each is next due.

A schedule's cron is read in its IANA time zone (so "0 9 * * 1-5" is nine in the morning
there, summer and winter); `next_run_at` is stored in UTC. Firing is apps.automations.firing.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Any

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from apps.agents.models import Agent
from apps.agents.services import require_not_archived
from apps.automations.models import Schedule
from apps.core.errors import ServiceError
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.mentions import extract_mentions
from apps.threads.models import Thread, ThreadKind
from apps.threads.services import check_body, resolve_recipients, thread_direct_for_agent

MAX_PROMPT_BYTES = 32 * 1024


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_check(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone called `name`, or ServiceError on the `timezone` field."""
    if name not in _zone_names() and name != "UTC":
        raise ServiceError(
            f"{name!r} is not an IANA time zone (such as Europe/Paris or UTC).", field="timezone"
        )
    return zoneinfo.ZoneInfo(name)


def cron_check(cron: str) -> str:
    """The cron expression, normalized, if it is five valid fields (minute hour day month
    weekday); ServiceError on the `cron` field otherwise."""
    fields = cron.split()
    if len(fields) != 5 or not croniter.is_valid(" ".join(fields)):
        raise ServiceError(
            "A cron expression is five fields: minute hour day-of-month month day-of-week "
            '(for example "0 9 * * 1-5").',
            field="cron",
        )
    return " ".join(fields)


def next_due(*, cron: str, zone: str, after: datetime) -> datetime:
    """The first time after `after` that `cron` names in the zone `zone`, in UTC."""
    local = after.astimezone(zoneinfo.ZoneInfo(zone))
    following: datetime = croniter(cron, local).get_next(datetime)
    return following.astimezone(UTC)


def schedule_body(*, agent: Agent, prompt: str) -> str:
    """The message a firing posts: the prompt, mentioning the agent (once)."""
    if agent.handle in extract_mentions(prompt):
        return prompt
    return f"@{agent.handle} {prompt}"


def _check_thread(*, agent: Agent, thread: Thread | None) -> Thread:
    if thread is None:
        return thread_direct_for_agent(agent=agent)
    if thread.team_id != agent.team_id:
        raise ServiceError("No such thread in this team.", field="thread")
    if thread.kind == ThreadKind.DIRECT and thread.agent_id != agent.pk:
        raise ServiceError(
            "A direct thread belongs to its own agent: choose a channel or this agent's "
            "direct thread.",
            field="thread",
        )
    return thread


def _check_prompt(*, agent: Agent, thread: Thread, prompt: str) -> str:
    if not prompt.strip():
        raise ServiceError("A schedule needs a prompt.", field="prompt")
    if len(prompt.encode("utf-8", "surrogatepass")) > MAX_PROMPT_BYTES:
        raise ServiceError("The prompt is over 32 KiB.", field="prompt", code="too_large")
    body = schedule_body(agent=agent, prompt=prompt)
    try:
        check_body(body)
        # The mentions must name someone now (a firing re-checks, and fails visibly).
        resolve_recipients(thread=thread, body=body)
    except ServiceError as exc:
        raise ServiceError(exc.message, field="prompt", code=exc.code) from None
    return prompt


def schedule_create(
    *,
    actor: Membership,
    agent: Agent,
    cron: str,
    prompt: str,
    thread: Thread | None = None,
    timezone_name: str = "UTC",
    enabled: bool = True,
    now: datetime | None = None,
) -> Schedule:
    require_role(actor, Role.ADMIN, "Schedules are for admins.", team_id=agent.team_id)
    require_not_archived(agent)
    cron = cron_check(cron)
    timezone_check(timezone_name)
    with transaction.atomic():
        thread = _check_thread(agent=agent, thread=thread)
        prompt = _check_prompt(agent=agent, thread=thread, prompt=prompt)
        now = now or timezone.now()
        return Schedule.objects.create(
            team_id=agent.team_id,
            agent=agent,
            cron=cron,
            prompt=prompt,
            thread=thread,
            timezone=timezone_name,
            enabled=enabled,
            next_run_at=next_due(cron=cron, zone=timezone_name, after=now) if enabled else None,
            created_by=actor.user,
        )


def schedule_update(
    *, actor: Membership, schedule: Schedule, now: datetime | None = None, **changes: Any
) -> Schedule:
    """Change any of agent, cron, prompt, thread, timezone_name, enabled. A change of when it
    fires (cron, zone, enabled) sets the next due time from now."""
    require_role(actor, Role.ADMIN, "Schedules are for admins.", team_id=schedule.team_id)
    agent: Agent = changes.get("agent", schedule.agent)
    if agent.team_id != schedule.team_id:
        raise ServiceError("No such agent in this team.", field="agent")
    if "agent" in changes:
        require_not_archived(agent)
    cron = cron_check(changes["cron"]) if "cron" in changes else schedule.cron
    zone = changes.get("timezone_name", schedule.timezone)
    timezone_check(zone)
    enabled = bool(changes.get("enabled", schedule.enabled))
    with transaction.atomic():
        if "thread" in changes or "agent" in changes:
            thread = _check_thread(agent=agent, thread=changes.get("thread", schedule.thread))
        else:
            thread = schedule.thread
        prompt = changes.get("prompt", schedule.prompt)
        if {"prompt", "agent", "thread"} & changes.keys():
            prompt = _check_prompt(agent=agent, thread=thread, prompt=prompt)
        retime = (cron, zone, enabled) != (schedule.cron, schedule.timezone, schedule.enabled)
        schedule.agent, schedule.thread, schedule.prompt = agent, thread, prompt
        schedule.cron, schedule.timezone, schedule.enabled = cron, zone, enabled
        fields = ["agent", "thread", "prompt", "cron", "timezone", "enabled", "updated_at"]
        if retime or (enabled and schedule.next_run_at is None):
            now = now or timezone.now()
            schedule.next_run_at = next_due(cron=cron, zone=zone, after=now) if enabled else None
            fields.append("next_run_at")
        # Not the firing's columns (last_fired_at, last_run): a scheduler may be writing them.
        schedule.save(update_fields=fields)
    return schedule


def schedule_delete(*, actor: Membership, schedule: Schedule) -> None:
    require_role(actor, Role.ADMIN, "Schedules are for admins.", team_id=schedule.team_id)
    schedule.delete()
