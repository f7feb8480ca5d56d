"""Reading schedules and triggers, scoped to the actor's team (another team's id is a 404)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.automations.models import Schedule, ScheduleFiring, Trigger, TriggerCall
from apps.core.errors import NotFound
from apps.core.secretbox import token_hash
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team


def schedule_list(*, team: Team) -> QuerySet[Schedule]:
    return Schedule.objects.filter(team=team).select_related("agent", "thread").order_by("id")


def access_schedule(
    *, user: User | AnonymousUser, schedule_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Schedule]:
    schedule = Schedule.objects.select_related("agent", "thread").filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound()
    membership = access_team(user=user, team_id=schedule.team_id, role=role)
    schedule.team = membership.team
    return membership, schedule


def firing_list(*, schedule: Schedule) -> QuerySet[ScheduleFiring]:
    return schedule.firings.order_by("-due_at", "-id")


def trigger_list(*, team: Team) -> QuerySet[Trigger]:
    return Trigger.objects.filter(team=team).select_related("agent", "thread").order_by("id")


def access_trigger(
    *, user: User | AnonymousUser, trigger_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Trigger]:
    trigger = Trigger.objects.select_related("agent", "thread").filter(pk=trigger_id).first()
    if trigger is None:
        raise NotFound()
    membership = access_team(user=user, team_id=trigger.team_id, role=role)
    trigger.team = membership.team
    return membership, trigger


def trigger_call_list(*, trigger: Trigger) -> QuerySet[TriggerCall]:
    return trigger.calls.order_by("-received_at", "-id")


def trigger_for_token(token: str) -> Trigger | None:
    """The trigger whose URL holds `token` (the URL is the credential), or None."""
    return (
        Trigger.objects.select_related("agent", "thread", "team")
        .filter(token_hash=token_hash(token))
        .first()
    )
