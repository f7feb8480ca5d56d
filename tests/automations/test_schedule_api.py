"""The schedules' REST API: create with next_run_at, validation, roles, other teams' 404s."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from apps.automations.models import Schedule, ScheduleFiring
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_create_answers_201_with_next_run_at_in_the_time_zone(api, team, agent, thread):
    response = api.post(
        f"/api/v1/teams/{team.pk}/schedules/",
        {"agent": agent.pk, "cron": "0 9 * * 1-5", "prompt": "standup", "thread": thread.pk,
         "timezone": "America/New_York", "enabled": True},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["thread"] == thread.pk and body["timezone"] == "America/New_York"
    local = datetime.fromisoformat(body["next_run_at"]).astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5

    default = api.post(
        f"/api/v1/teams/{team.pk}/schedules/",
        {"agent": agent.pk, "cron": "*/5 * * * *", "prompt": "poll"},
        format="json",
    ).json()
    assert default["timezone"] == "UTC"
    assert Schedule.objects.get(pk=default["id"]).thread.agent == agent  # its direct thread


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),  # no seconds field
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "ask @nobody-here"}, "prompt"),
    ],
)
def test_invalid_input_is_a_400_on_its_field(api, team, agent, body, field):
    response = api.post(
        f"/api/v1/teams/{team.pk}/schedules/",
        {"agent": agent.pk, "cron": "0 * * * *", "prompt": "p", **body},
        format="json",
    )
    assert response.status_code == 400 and response.json()["field"] == field, response.json()


def test_patch_retimes_disable_clears_next_run_at_and_delete(api, team, agent):
    created = api.post(
        f"/api/v1/teams/{team.pk}/schedules/",
        {"agent": agent.pk, "cron": "0 * * * *", "prompt": "p"},
        format="json",
    ).json()
    url = f"/api/v1/schedules/{created['id']}/"
    changed = api.patch(url, {"cron": "30 6 * * *", "timezone": "Asia/Kolkata"}, format="json")
    local = datetime.fromisoformat(changed.json()["next_run_at"]).astimezone(
        ZoneInfo("Asia/Kolkata")
    )
    assert (local.hour, local.minute) == (6, 30)
    assert api.patch(url, {"enabled": False}, format="json").json()["next_run_at"] is None
    assert api.get(f"{url}firings/").json()["results"] == []
    assert api.delete(url).status_code == 204
    assert not Schedule.objects.exists() and not ScheduleFiring.objects.exists()


def test_viewers_read_admins_write_other_teams_are_404(api, team, agent, viewer, other_team):
    created = api.post(
        f"/api/v1/teams/{team.pk}/schedules/",
        {"agent": agent.pk, "cron": "0 * * * *", "prompt": "p"},
        format="json",
    ).json()
    url = f"/api/v1/schedules/{created['id']}/"
    reader = api_client_for(viewer.user)
    assert reader.get(url).status_code == 200
    assert reader.get(f"{url}firings/").status_code == 200
    assert reader.patch(url, {"enabled": False}, format="json").status_code == 403
    assert (
        reader.post(
            f"/api/v1/teams/{team.pk}/schedules/",
            {"agent": agent.pk, "cron": "0 * * * *", "prompt": "p"},
            format="json",
        ).status_code
        == 403
    )

    outsider = api_client_for(other_team["owner"].user)
    for method in ("get", "patch", "delete"):
        assert getattr(outsider, method)(url).status_code == 404
    assert outsider.get(f"{url}firings/").status_code == 404
    assert outsider.get(f"/api/v1/teams/{team.pk}/schedules/").status_code == 404
    for body in ({"agent": other_team["agent"].pk}, {"thread": other_team["thread"].pk}):
        response = api.post(
            f"/api/v1/teams/{team.pk}/schedules/",
            {"agent": agent.pk, "cron": "0 * * * *", "prompt": "p", **body},
            format="json",
        )
        assert response.status_code == 400 and response.json()["field"] in body
