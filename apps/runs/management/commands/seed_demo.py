"""Create the demo team on first start (idempotent) and print how to log in."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from apps.agents import services as agent_services
from apps.teams import services as team_services
from apps.teams.models import Team
from apps.threads import services as thread_services
from apps.threads.models import Thread

DEMO_TEAM = "Demo"
DEMO_USER = "demo"
DEMO_AGENTS: list[dict[str, Any]] = [
    {
        "handle": "coder",
        "display_name": "Coder",
        "harness": "claude",
        "instructions": "You write and fix code in /workspace. Keep changes small and tested.",
    },
    {
        "handle": "shell",
        "display_name": "Shell runner",
        "harness": "command",
        "command": "python3 -u $OZWEB_AGENTS_DIR/shell_agent.py",
        "instructions": "Runs the shell command it is asked for and reports the output.",
    },
    {
        "handle": "reviewer",
        "display_name": "Reviewer",
        "harness": "command",
        "command": "python3 -u $OZWEB_AGENTS_DIR/review_agent.py",
        "instructions": "Reviews the workspace and reports findings as Markdown.",
    },
]
WELCOME = [
    "Welcome to **ozweb**. This is `#general`, a live feed: everyone viewing it sees new "
    "messages as they are posted.",
    "Mention an agent to hand it work, for example `@shell` or `@reviewer`. Each mention "
    "creates a delivery you can see under the message.",
]


class Command(BaseCommand):
    help = "Create the demo user, team, agents and #general on first start; print the login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = settings.VAR_DIR / "demo_credentials"
        if not Team.objects.filter(name=DEMO_TEAM).exists():
            password = secrets.token_urlsafe(12)
            self._create(password)
            credentials.write_text(f"{DEMO_USER} {password}\n")
            credentials.chmod(0o600)
        self.stdout.write("")
        self.stdout.write(f"  ozweb is at {options['url']}")
        if credentials.exists():
            username, password = credentials.read_text().split()
            self.stdout.write(f"  Log in as {username} with password {password}")
        self.stdout.write("")

    @transaction.atomic
    def _create(self, password: str) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = user_model.objects.create_user(DEMO_USER, "demo@example.com", password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        team = team_services.team_create(name=DEMO_TEAM, owner=user)
        owner = team.memberships.get(user=user)
        for spec in DEMO_AGENTS:
            agent_services.agent_create(actor=owner, **spec)
        general = Thread.objects.get(team=team, name="general")
        for body in WELCOME:
            thread_services.message_post(actor=owner, thread=general, body=body)
