"""python manage.py run_scenario: the collaboration demo, start to finish, in this process.

For a live view, press "Run the collaboration demo" on a team's dashboard instead (or run
scaled out, where any process's updates reach every browser).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.artifacts.models import Artifact
from apps.runs.models import Run
from apps.runs.scenario import scenario_start
from apps.teams.models import Membership, Role
from apps.threads.models import Message


class Command(BaseCommand):
    help = "Run the lead/workers collaboration demo and print every step of its thread."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", default="Demo")
        parser.add_argument("--user", default="demo", help="An owner or admin of the team.")
        parser.add_argument(
            "--harness",
            choices=["offline", "models"],
            default="offline",
            help="offline: model-free example agents; models: Claude Code lead, Codex workers "
            "(needs ANTHROPIC_API_KEY and OPENAI_API_KEY in the environment).",
        )
        parser.add_argument("--timeout", type=float, default=600)

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        membership = (
            Membership.objects.filter(user=user, team__name=options["team"])
            .select_related("team")
            .first()
        )
        if membership is None or not membership.has_role(Role.ADMIN):
            raise CommandError(f"{options['user']} is not an owner or admin of {options['team']}.")
        settings.OZWEB_RUN_DISPATCH = "inprocess"  # this process executes the runs
        model_env = {}
        if options["harness"] == "models":
            import os

            keys = {
                k: os.environ[k] for k in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY") if k in os.environ
            }
            if len(keys) < 2:
                raise CommandError("Set ANTHROPIC_API_KEY and OPENAI_API_KEY to run with models.")
            model_env = {"secrets": keys}
        message = scenario_start(actor=membership, harness=options["harness"], **model_env)
        thread = message.thread
        self.stdout.write(f"Thread {thread.label} (id {thread.pk}); goal handed to @lead.")
        seen = 0
        deadline = time.monotonic() + options["timeout"]
        while time.monotonic() < deadline:
            for line in Message.objects.filter(thread=thread, seq__gt=seen).order_by("seq"):
                author = line.author_name
                self.stdout.write(
                    f"  [{line.seq:>3}] {author:<10} {line.kind:<11} {line.body[:110]!r}"
                )
                seen = line.seq
            runs = Run.objects.filter(thread=thread)
            if runs.exists() and not runs.active().exists():
                break
            time.sleep(0.3)
        lead = Run.objects.filter(thread=thread, agent__handle="lead", parent=None).first()
        if lead is None or lead.status != "succeeded":
            raise CommandError(f"The lead did not succeed: {lead.status if lead else 'no run'}")
        names = ", ".join(Artifact.objects.filter(thread=thread).values_list("name", flat=True))
        self.stdout.write(self.style.SUCCESS(f"Done. Artifacts: {names}"))
