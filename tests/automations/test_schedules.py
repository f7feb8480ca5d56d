"""Schedules: due times in their zone, firing exactly once with several schedulers, skipping
while the previous firing's run is live, and a real run of a command agent."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from apps.automations.firing import schedule_fire, schedules_tick
from apps.automations.models import FiringStatus, Schedule, ScheduleFiring
from apps.automations.schedules import schedule_create
from apps.runs.archiving import agent_archive
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.runs.transitions import run_transition
from apps.threads.models import Delivery, Message, MessageKind

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)  # a Monday


def minute(n: int) -> datetime:
    """n minutes after T0's minute, a few seconds in (as a 15-second tick would be)."""
    return T0.replace(second=0) + timedelta(minutes=n, seconds=7)


def every_minute(owner, agent, thread=None) -> Schedule:
    return schedule_create(
        actor=owner, agent=agent, cron="* * * * *", prompt="check the queue", thread=thread, now=T0
    )


def test_next_run_at_is_the_cron_read_in_the_schedules_time_zone(owner, agent):
    # Friday noon in Paris, just before summer time starts (Sunday 29 March 2026).
    now = datetime(2026, 3, 27, 11, 0, tzinfo=UTC)
    paris = schedule_create(
        actor=owner, agent=agent, cron="0 9 * * 1-5", prompt="standup",
        timezone_name="Europe/Paris", now=now,
    )  # fmt: skip
    # Monday 9:00 in Paris is 07:00 UTC in summer time (it was 08:00 UTC the Friday before).
    assert paris.next_run_at == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    tokyo = schedule_create(
        actor=owner, agent=agent, cron="0 9 * * 1-5", prompt="standup",
        timezone_name="Asia/Tokyo", now=now,
    )  # fmt: skip
    # Friday 20:00 in Tokyo: the next weekday 9:00 is Monday, 00:00 UTC.
    assert tokyo.next_run_at == datetime(2026, 3, 30, 0, 0, tzinfo=UTC)
    utc = schedule_create(actor=owner, agent=agent, cron="30 8 * * *", prompt="x", now=now)
    assert utc.timezone == "UTC" and utc.next_run_at == datetime(2026, 3, 28, 8, 30, tzinfo=UTC)


def test_a_firing_posts_the_prompt_mentioning_the_agent_and_a_real_run_answers(owner, echo_agent):
    schedule = every_minute(owner, echo_agent)
    # Default thread: the agent's direct thread.
    assert schedule.thread.kind == "direct" and schedule.thread.agent == echo_agent

    assert schedules_tick(now=T0).fired == []  # not due yet
    result = schedules_tick(now=minute(1))
    [firing] = ScheduleFiring.objects.filter(pk__in=result.fired)
    assert firing.status == FiringStatus.FIRED and firing.due_at == minute(1).replace(second=0)

    message = firing.message
    assert message.body == "@bot check the queue"
    assert message.author_user is None and message.author_agent is None  # posted by ozweb
    assert message.data["schedule"] == schedule.pk
    run = Run.objects.get(agent=echo_agent)
    assert firing.run == run and Delivery.objects.get(message=message).run == run
    schedule.refresh_from_db()
    assert schedule.last_run == run and schedule.last_fired_at == minute(1)
    assert schedule.next_run_at == minute(2).replace(second=0)

    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "check the queue" in run.result_text  # the prompt reached the agent
    assert Message.objects.filter(
        thread=schedule.thread, kind=MessageKind.STATUS, body=f"@bot finished run {run.pk}."
    ).exists()


def test_a_firing_is_skipped_while_the_previous_run_is_live_and_says_so(owner, echo_agent, web):
    schedule = every_minute(owner, echo_agent)
    first = ScheduleFiring.objects.get(pk__in=schedules_tick(now=minute(1)).fired)
    run = Run.objects.get(agent=echo_agent)
    assert run.status == RunStatus.QUEUED  # live: nobody has run it yet

    result = schedules_tick(now=minute(2))
    [skipped] = ScheduleFiring.objects.filter(pk__in=result.skipped)
    assert skipped.status == FiringStatus.SKIPPED
    assert f"run {run.pk}" in skipped.reason and skipped.run is None
    status = skipped.message
    assert status.kind == MessageKind.STATUS and status.thread == schedule.thread
    assert "skipped" in status.body and f"run {run.pk}" in status.body
    assert not status.deliveries.exists()  # nobody is woken by it
    page = web.get(f"/schedules/{schedule.pk}/").text  # the firing log shows it too
    assert "Skipped" in page and skipped.reason in page and f"run {run.pk}</a>" in page
    assert Run.objects.filter(agent=echo_agent).count() == 1

    execute_run(run.pk)  # the previous run ends
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    third = ScheduleFiring.objects.get(pk__in=schedules_tick(now=minute(3)).fired)
    assert third.run is not None and third.run != first.run
    assert list(
        ScheduleFiring.objects.filter(schedule=schedule)
        .order_by("due_at")
        .values_list("status", flat=True)
    ) == ["fired", "skipped", "fired"]


def test_a_firing_that_cannot_post_fails_visibly(owner, agent):
    schedule = every_minute(owner, agent)
    agent_archive(actor=owner, agent=agent)
    [failed] = ScheduleFiring.objects.filter(pk__in=schedules_tick(now=minute(1)).failed)
    assert failed.status == FiringStatus.FAILED and "archived" in failed.reason
    assert failed.message is None
    schedule.refresh_from_db()
    # An archived agent takes no more work: the schedule stops rather than fail every minute.
    assert schedule.enabled is False and schedule.next_run_at is None


def test_a_disabled_schedule_does_not_fire(owner, agent):
    schedule = every_minute(owner, agent)
    Schedule.objects.filter(pk=schedule.pk).update(enabled=False)
    assert schedules_tick(now=minute(5)).fired == []
    assert not ScheduleFiring.objects.exists()


def test_a_missed_time_fires_once_and_the_schedule_goes_on_from_now(owner, agent):
    schedule = every_minute(owner, agent)
    result = schedules_tick(now=minute(30))  # the schedulers were down for half an hour
    assert len(result.fired) == 1
    schedule.refresh_from_db()
    assert schedule.next_run_at == minute(31).replace(second=0)


def test_a_due_time_already_claimed_is_not_fired_again(owner, agent):
    schedule = every_minute(owner, agent)
    due = schedule.next_run_at
    # Another scheduler's claim: its firing row for this due time.
    ScheduleFiring.objects.create(
        schedule=schedule, due_at=due, fired_at=due, status=FiringStatus.FIRED
    )
    assert schedule_fire(schedule_id=schedule.pk, due_at=due, now=minute(1)) is None
    assert ScheduleFiring.objects.count() == 1
    assert not Message.objects.filter(data__schedule=schedule.pk).exists()


def _two_schedulers_tick_each_minute(owner, agent, minutes: int) -> list[BaseException]:
    """Two schedulers (threads, each with its own connection) tick at the same instants."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    outcomes: list[tuple[int, int, int]] = []

    def scheduler() -> None:
        try:
            for n in range(1, minutes + 1):
                barrier.wait(timeout=30)  # both start the minute's tick together
                result = schedules_tick(now=minute(n))
                outcomes.append((n, len(result.fired), result.lost))
                barrier.wait(timeout=30)
                # The minute's run ends before the next (stopped while queued: this test is
                # about the schedulers; the others run the agent for real).
                for run in Run.objects.filter(agent=agent).active():
                    run_transition(
                        run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.CANCELLED
                    )
                barrier.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    workers = [threading.Thread(target=scheduler) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    for n in range(1, minutes + 1):
        this_minute = [o for o in outcomes if o[0] == n]
        # One scheduler fired, the other lost the claim (or found it no longer due).
        assert sorted(fired for _, fired, _ in this_minute) == [0, 1], this_minute
    return errors


@pytest.mark.postgres
def test_two_schedulers_fire_a_minutely_schedule_once_per_minute(owner, echo_agent):
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency: PostgreSQL (DATABASE_URL)")
    schedule = every_minute(owner, echo_agent)
    minutes = 6
    assert _two_schedulers_tick_each_minute(owner, echo_agent, minutes) == []
    firings = list(ScheduleFiring.objects.filter(schedule=schedule).order_by("due_at"))
    assert [f.due_at for f in firings] == [minute(n).replace(second=0) for n in range(1, 7)]
    assert {f.status for f in firings} == {FiringStatus.FIRED}
    prompts = Message.objects.filter(thread=schedule.thread, data__schedule=schedule.pk)
    assert prompts.count() == minutes
    assert Run.objects.filter(agent=echo_agent).count() == minutes
    assert len({f.run_id for f in firings}) == minutes
