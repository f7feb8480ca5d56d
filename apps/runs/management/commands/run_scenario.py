"""python manage.py run_scenario: the collaboration demo, start to finish.

The scenario runs inside the ozweb server (so every step appears live in the browser, and the
agents' `oz` calls reach it at OZWEB_AGENT_API_URL). If no server answers there, this command
starts one for the duration. It prints each message of the demo's thread as it appears.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token

from apps.providers.models import ProviderKind
from apps.providers.selectors import provider_list
from apps.teams.models import Membership, Role

FINISHED = {"succeeded", "failed", "cancelled", "timed_out"}


def _has_providers(membership: Membership) -> bool:
    """Whether the team's agents reach both models through the gateway: then no key is given
    to the agents (the gateway adds the provider's)."""
    kinds = set(provider_list(team=membership.team).values_list("kind", flat=True))
    return {ProviderKind.ANTHROPIC, ProviderKind.OPENAI} <= kinds


class Command(BaseCommand):
    help = "Run the lead/workers collaboration demo on the ozweb server and print its thread."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", default="Demo")
        parser.add_argument("--user", default="demo", help="An owner or admin of the team.")
        parser.add_argument(
            "--harness",
            choices=["offline", "models"],
            default="offline",
            help="offline: model-free example agents; models: a Claude Code lead and Codex "
            "workers (the team's anthropic and openai providers, through ozweb's gateway; or, "
            "without them, ANTHROPIC_API_KEY and OPENAI_API_KEY in this environment).",
        )
        parser.add_argument("--timeout", type=float, default=600)

    def handle(self, *args: Any, **options: Any) -> None:
        membership = (
            Membership.objects.filter(user__username=options["user"], team__name=options["team"])
            .select_related("team", "user")
            .first()
        )
        if membership is None or not membership.has_role(Role.ADMIN):
            raise CommandError(f"{options['user']} is not an owner or admin of {options['team']}.")
        token = Token.objects.get_or_create(user=membership.user)[0].key
        body: dict[str, Any] = {"harness": options["harness"]}
        if options["harness"] == "models" and not _has_providers(membership):
            keys = {k: os.environ.get(k, "") for k in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
            if not all(keys.values()):
                raise CommandError(
                    "Add the team's anthropic and openai providers, or set ANTHROPIC_API_KEY "
                    "and OPENAI_API_KEY, to run with models."
                )
            body["secrets"] = keys
        server = Server(settings.OZWEB_AGENT_API_URL, token)
        started = server.ensure_running(self.stdout.write)
        try:
            demo = server.post(f"/api/v1/teams/{membership.team_id}/demo/", body)
            self.follow(server, demo["thread"], options["timeout"])
        finally:
            if started is not None:
                started.terminate()
                started.wait(timeout=15)

    def follow(self, server: Server, thread_id: int, timeout: float) -> None:
        self.stdout.write(f"Thread {thread_id}: {server.url}/threads/{thread_id}/")
        since, deadline, lead, settled = 0, time.monotonic() + timeout, None, 0
        while time.monotonic() < deadline:
            page = server.get(f"/api/v1/threads/{thread_id}/messages/?since={since}&limit=200")
            for message in page["results"]:
                since = message["seq"]
                author = message["author"]["name"]
                text = message["body"].replace("\n", " ")[:110]
                self.stdout.write(f"  [{since:>3}] {author:<10} {message['kind']:<11} {text}")
            runs = server.get(f"/api/v1/runs/?thread={thread_id}&limit=50")["results"]
            lead = next((r for r in runs if r["agent_handle"] == "lead" and not r["parent"]), None)
            idle = bool(lead) and all(r["status"] in FINISHED for r in runs)
            # Twice in a row: a finished worker's result wakes the lead just after it ends.
            settled = settled + 1 if idle else 0
            if settled >= 2:
                break
            time.sleep(0.5)
        if not lead or lead["status"] != "succeeded":
            raise CommandError(f"The lead did not succeed: {lead['status'] if lead else 'no run'}")
        names = [
            a["name"] for a in server.get(f"/api/v1/teams/{lead['team']}/artifacts/")["results"]
        ]
        self.stdout.write(self.style.SUCCESS(f"Done. Artifacts: {', '.join(sorted(names))}"))


class Server:
    def __init__(self, url: str, token: str) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise CommandError(f"OZWEB_AGENT_API_URL must be an http(s) URL, not {url!r}.")
        self.url = url.rstrip("/")
        self.token = token

    def request(self, path: str, data: dict | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 -- http(s) only, checked above
            self.url + path,
            data=json.dumps(data).encode() if data is not None else None,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise CommandError(f"{path}: {exc.code} {exc.read().decode()[:500]}") from None

    def get(self, path: str) -> Any:
        return self.request(path)

    def post(self, path: str, data: dict) -> Any:
        return self.request(path, data)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310
                return True
        except (OSError, urllib.error.URLError):
            return False

    def ensure_running(self, say: Any) -> subprocess.Popen | None:
        if self.answers():
            return None
        parts = urlsplit(self.url)
        say(f"No ozweb at {self.url}; starting one for the demo.")
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", parts.hostname or "127.0.0.1",
             "-p", str(parts.port or 80), "ozweb.asgi:application"],
            cwd=settings.BASE_DIR,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                process.terminate()
                raise CommandError(f"Could not start ozweb at {self.url}.")
            time.sleep(0.3)
        return process
