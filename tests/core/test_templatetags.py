"""The feed's own template tags give what the Django template code they replace gives."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.template import engines
from django.utils import timezone

from apps.agents.models import Agent


def render(source: str, **context: object) -> str:
    return engines["django"].from_string("{% load ozweb %}" + source).render(context)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2026, 12, 2, 0, 5, 9, 123456, tzinfo=dt.UTC),
        dt.datetime(2026, 7, 1, 23, 59, 59, tzinfo=dt.UTC),  # summer time, a day later east
        dt.datetime(2026, 3, 29, 1, 0, 0, tzinfo=dt.UTC),  # Paris moves its clocks
    ],
)
def test_clock_and_stamp_match_djangos_date_filters(zone: str, moment: dt.datetime) -> None:
    with timezone.override(zone):
        assert render("{{ t|clock }}", t=moment) == render('{{ t|time:"H:i" }}', t=moment)
        assert render("{{ t|stamp }}", t=moment) == render("{{ t|date:'Y-m-d H:i:s e' }}", t=moment)


def test_the_avatar_tag_renders_the_avatar_component_and_follows_a_rename() -> None:
    agent = Agent(handle="coder", display_name="Coder Bot")
    human = User(username="AdaL")
    include = '{% include "components/avatar.html" with agent=agent human=human %}'

    assert render("{% avatar agent=agent %}", agent=agent) == render(include, agent=agent)
    assert render("{% avatar human=human %}", human=human) == render(
        include, agent=None, human=human
    )
    assert render("{% avatar %}") == render(include, agent=None, human=None)
    assert 'title="@coder"' in render("{% avatar agent=agent %}", agent=agent)

    agent.handle, agent.display_name = "builder", "Builder"  # same instance, new name
    assert render("{% avatar agent=agent %}", agent=agent) == render(include, agent=agent)
    assert 'title="@builder"' in render("{% avatar agent=agent %}", agent=agent)
