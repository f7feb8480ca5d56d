"""`manage.py seed_demo` (what `make run` starts with)."""

from io import StringIO

import pytest
from django.core.management import call_command

from apps.agents.models import Agent
from apps.teams.models import Team
from apps.threads.models import Thread

pytestmark = pytest.mark.django_db


def seed(settings, tmp_path) -> str:
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("seed_demo", "--url", "http://demo.test/", stdout=out)
    return out.getvalue()


def test_seed_demo_creates_the_demo_team_once_and_prints_the_login(settings, tmp_path):
    first = seed(settings, tmp_path)
    second = seed(settings, tmp_path)

    team = Team.objects.get(name="Demo")
    assert sorted(Agent.objects.filter(team=team).values_list("handle", flat=True)) == [
        "coder",
        "reviewer",
        "shell",
    ]
    general = Thread.objects.get(team=team, name="general")
    assert general.messages.count() == 2
    assert Team.objects.count() == 1
    username, password = (tmp_path / "demo_credentials").read_text().split()
    assert f"Log in as {username} with password {password}" in first
    assert first == second
    assert "http://demo.test/" in first
