"""Two scheduler processes against one embedded (SQLite file) install: a minutely schedule
fires once per minute. (The PostgreSQL variant, with two scheduler threads on their own
connections, is in test_schedules.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.servers import ROOT

T0 = "2026-06-01T12:00:30+00:00"
MINUTES = 4


def test_two_scheduler_processes_fire_a_minutely_schedule_once_per_minute(embedded_env, tmp_path):
    env = {
        **embedded_env,
        "OZWEB_RUN_DISPATCH": "manual",
        "DJANGO_SETTINGS_MODULE": "ozweb.settings",
    }
    steps = tmp_path / "steps"
    steps.mkdir()
    schedulers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.automations.scheduler_process",
                str(steps),
                str(i),
                str(MINUTES),
                T0,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in (0, 1)
    ]
    outputs = [p.communicate(timeout=120) for p in schedulers]
    for process, (_, err) in zip(schedulers, outputs, strict=True):
        assert process.returncode == 0, err
    lines = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    ticks = [line for line in lines if isinstance(line, list)]
    for n in range(1, MINUTES + 1):
        # Each minute: one process fired, the other found it claimed or no longer due.
        assert sorted(fired for minute, fired, _ in ticks if minute == n) == [0, 1], ticks

    [report] = [line["report"] for line in lines if isinstance(line, dict)]
    assert report["firings"] == [
        [f"2026-06-01T12:0{n}:00+00:00", "fired"] for n in range(1, MINUTES + 1)
    ]
    assert report["prompts"] == MINUTES and report["runs"] == MINUTES
