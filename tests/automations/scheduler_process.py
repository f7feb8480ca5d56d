"""A scheduler process for test_scheduler_processes.py: ticks a minutely schedule at minutes
1..N of an injected clock, in step with the other scheduler process.

    python -m tests.automations.scheduler_process <step dir> <index> <minutes> <T0 iso>

Process 0 first makes the team, agent and schedule, and at the end prints what the database
holds. The processes keep in step through files in <step dir> (each waits for the other's
file: an event, not a sleep). Each prints one JSON line per minute: [minute, fired, lost].
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import django


def set_up(t0: datetime) -> None:
    from django.contrib.auth import get_user_model

    from apps.agents.models import Agent
    from apps.automations.schedules import schedule_create
    from apps.teams.models import Membership
    from apps.teams.services import team_create

    user = get_user_model().objects.create_user("ada")
    team = team_create(name="Lab", owner=user)
    agent = Agent.objects.create(
        team=team, handle="bot", display_name="Bot", harness="command", command="true"
    )
    owner = Membership.objects.get(team=team, user=user)
    schedule_create(actor=owner, agent=agent, cron="* * * * *", prompt="check", now=t0)


def report() -> dict[str, object]:
    from apps.automations.models import ScheduleFiring
    from apps.runs.models import Run
    from apps.threads.models import Message

    firings = ScheduleFiring.objects.order_by("due_at")
    return {
        "firings": [[f.due_at.isoformat(), f.status] for f in firings],
        "prompts": Message.objects.filter(body="@bot check").count(),
        "runs": Run.objects.count(),
    }


def main() -> None:
    step_dir, index, minutes = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    t0 = datetime.fromisoformat(sys.argv[4])
    django.setup()
    from django.db import connections

    from apps.automations.firing import schedules_tick
    from apps.runs.models import Run, RunStatus
    from apps.runs.transitions import run_transition

    def in_step(name: str) -> None:
        (step_dir / f"{name}-{index}").touch()
        deadline = time.monotonic() + 60
        while not all((step_dir / f"{name}-{i}").exists() for i in (0, 1)):
            if time.monotonic() > deadline:
                raise SystemExit(f"the other scheduler never reached {name}")
            time.sleep(0.002)

    if index == 0:
        set_up(t0)
    start = t0.replace(second=0)
    for n in range(1, minutes + 1):
        in_step(f"tick-{n}")
        result = schedules_tick(now=start + timedelta(minutes=n, seconds=7))
        print(json.dumps([n, len(result.fired), result.lost]), flush=True)
        in_step(f"ticked-{n}")
        # The minute's run ends before the next minute (stopped while queued).
        for run in Run.objects.active():
            run_transition(run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.CANCELLED)
        in_step(f"ended-{n}")
    if index == 0:
        print(json.dumps({"report": report()}), flush=True)
    connections.close_all()


if __name__ == "__main__":
    main()
