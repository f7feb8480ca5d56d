"""The scheduler's tick: fire what is due, exactly once however many schedulers run.

Each due time of a schedule is claimed by inserting its ScheduleFiring row, which is unique
on (schedule, due_at): a second scheduler's insert fails (on PostgreSQL it waits for the first
one's transaction, then fails), so it moves on. The claim, the message and the schedule's
next due time commit together: a scheduler that dies half-way leaves nothing claimed.

A firing posts the prompt in the schedule's thread as a message (authored by ozweb, not by
a person) that mentions the agent: the delivery path dispatches it as it would a human's.
While the run that took the previous firing is still going (or its message still waits for
a run), the firing is skipped instead, with a status message in the thread saying so.

Celery beat runs the tick in scaled mode (`automations.tick`, apps/automations/tasks.py); the
embedded mode runs a SchedulerThread, started by the server's runtime (ozweb/runtime.py). A
scheduler that was down fires a missed time once when it is back, then goes on from now.
"""

from __future__ import annotations

import logging
import threading
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from apps.agents.services import require_not_archived
from apps.automations.models import FiringStatus, Schedule, ScheduleFiring
from apps.automations.schedules import next_due, schedule_body
from apps.core.errors import ServiceError
from apps.runs.models import ACTIVE_STATUSES, Run
from apps.threads.models import Delivery, DeliveryState, MessageKind
from apps.threads.services import NewMessage, check_body, messages_append, resolve_recipients

logger = logging.getLogger(__name__)


@dataclass
class TickResult:
    fired: list[int] = field(default_factory=list)  # firing ids
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    lost: int = 0  # due times another scheduler claimed first


def schedules_tick(*, now: datetime | None = None) -> TickResult:
    """Fire every enabled schedule due by `now` (the clock is injectable for tests)."""
    now = now or timezone.now()
    result = TickResult()
    due = list(
        Schedule.objects.filter(enabled=True, next_run_at__lte=now)
        .order_by("next_run_at", "id")
        .values_list("pk", "next_run_at")
    )
    for schedule_id, due_at in due:
        assert due_at is not None  # filtered on it
        try:
            firing = schedule_fire(schedule_id=schedule_id, due_at=due_at, now=now)
        except Exception:
            # One broken schedule must not stop the others; it is tried again next tick.
            logger.exception("schedule %s: firing at %s failed", schedule_id, due_at)
            continue
        if firing is None:
            result.lost += 1
        else:
            getattr(result, firing.status).append(firing.pk)
    return result


def schedule_fire(*, schedule_id: int, due_at: datetime, now: datetime) -> ScheduleFiring | None:
    """Claim and fire one due time; None if another scheduler claimed it, or the schedule
    changed since it was read as due."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                firing = ScheduleFiring.objects.create(
                    schedule_id=schedule_id, due_at=due_at, fired_at=now, status=FiringStatus.FIRED
                )
        except IntegrityError:
            return None
        schedule = (
            Schedule.objects.select_related("agent", "thread", "team")
            .filter(pk=schedule_id)
            .first()
        )
        if schedule is None or not schedule.enabled or schedule.next_run_at != due_at:
            transaction.set_rollback(True)  # edited or removed meanwhile: no claim
            return None
        schedule.next_run_at = next_due(
            cron=schedule.cron, zone=schedule.timezone, after=max(now, due_at)
        )
        busy = _previous_still_going(schedule=schedule, current=firing)
        if busy:
            _skip(schedule=schedule, firing=firing, reason=busy)
        else:
            _post(schedule=schedule, firing=firing)
        firing.save()
        if schedule.agent.is_archived:
            # It would only fail from now on: the schedule stops, and says why (its firing).
            schedule.enabled, schedule.next_run_at = False, None
        # Guarded: an edit that retimed the schedule meanwhile keeps its own next due time.
        Schedule.objects.filter(pk=schedule.pk, next_run_at=due_at).update(
            enabled=schedule.enabled, next_run_at=schedule.next_run_at, updated_at=timezone.now()
        )
        if firing.status == FiringStatus.FIRED:
            Schedule.objects.filter(pk=schedule.pk).update(last_fired_at=now)
    return firing


def _post(*, schedule: Schedule, firing: ScheduleFiring) -> None:
    agent, thread = schedule.agent, schedule.thread
    body = schedule_body(agent=agent, prompt=schedule.prompt)
    try:
        with transaction.atomic():
            require_not_archived(agent)
            check_body(body)
            recipients = resolve_recipients(thread=thread, body=body)
            if agent not in recipients:
                recipients.append(agent)
            [message] = messages_append(
                thread=thread,
                items=[
                    NewMessage(
                        body=body,
                        data={"schedule": schedule.pk, "due_at": firing.due_at.isoformat()},
                        recipients=recipients,
                    )
                ],
            )
    except ServiceError as exc:
        firing.status, firing.reason = FiringStatus.FAILED, exc.message[:500]
        return
    firing.message = message
    # After the dispatch (queued on commit before this): the run that took the message.
    transaction.on_commit(lambda: _link_run(firing, agent_id=agent.pk))


def _skip(*, schedule: Schedule, firing: ScheduleFiring, reason: str) -> None:
    local = firing.due_at.astimezone(zoneinfo.ZoneInfo(schedule.timezone))
    firing.status, firing.reason = FiringStatus.SKIPPED, reason[:500]
    [firing.message] = messages_append(
        thread=schedule.thread,
        items=[
            NewMessage(
                body=(
                    f"Schedule {schedule.pk} (`{schedule.cron}`, {schedule.timezone}) skipped "
                    f"its {local:%Y-%m-%d %H:%M} firing for @{schedule.agent.handle}: {reason}"
                ),
                kind=MessageKind.STATUS,
                data={"schedule": schedule.pk, "due_at": firing.due_at.isoformat()},
            )
        ],
    )


def _previous_still_going(*, schedule: Schedule, current: ScheduleFiring) -> str:
    """Why the previous fired prompt is still being worked on, or "" if it is not."""
    previous = (
        ScheduleFiring.objects.filter(schedule=schedule, status=FiringStatus.FIRED)
        .exclude(pk=current.pk)
        .order_by("-due_at")
        .first()
    )
    if previous is None or previous.message_id is None:
        return ""
    delivery = (
        Delivery.objects.filter(message_id=previous.message_id, agent_id=schedule.agent_id)
        .values("state", "run_id")
        .first()
    )
    if delivery is None:
        return ""
    run_id = delivery["run_id"] or previous.run_id
    if run_id is not None:
        if previous.run_id is None:
            _link_run(previous, agent_id=schedule.agent_id)
        status = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        if status in ACTIVE_STATUSES:
            return f"run {run_id} of the previous firing is still {status}."
        return ""
    if delivery["state"] == DeliveryState.PENDING:
        return "the previous firing's message is still waiting for a run to start."
    return ""


def _link_run(firing: ScheduleFiring, *, agent_id: int) -> None:
    """Record the run that took the firing's message (once the dispatcher started one)."""
    if firing.message_id is None:
        return
    run_id = (
        Delivery.objects.filter(message_id=firing.message_id, agent_id=agent_id)
        .exclude(run=None)
        .values_list("run_id", flat=True)
        .first()
    )
    if run_id is None:
        return
    firing.run_id = run_id
    ScheduleFiring.objects.filter(pk=firing.pk).update(run_id=run_id)
    newest = (
        ScheduleFiring.objects.filter(schedule_id=firing.schedule_id, status=FiringStatus.FIRED)
        .order_by("-due_at")
        .values_list("pk", flat=True)
        .first()
    )
    if newest == firing.pk:
        Schedule.objects.filter(pk=firing.schedule_id).update(last_run_id=run_id)


class SchedulerThread(threading.Thread):
    """The embedded mode's stand-in for Celery beat: tick every `interval` seconds."""

    def __init__(self, interval: float = 15.0) -> None:
        super().__init__(name="ozweb-scheduler", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                schedules_tick()
            except Exception:
                logger.exception("the schedules' tick failed")
            finally:
                connections.close_all()  # hold no connection between ticks

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout)
