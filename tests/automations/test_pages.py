"""The schedule and trigger pages: admins create and edit, members read, other teams 404."""

from __future__ import annotations

import pytest

from apps.automations.models import Schedule, Trigger, TriggerCall
from apps.automations.schedules import schedule_create
from apps.automations.triggers import trigger_create
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_schedule_from_the_page_and_sees_its_firings(web, team, agent, thread):
    page = web.get(f"/teams/{team.pk}/schedules/")
    assert page.status_code == 200 and f'href="/teams/{team.pk}/schedules/new/"' in page.text
    assert f'href="/teams/{team.pk}/triggers/"' in page.text  # in the sidebar

    bad = web.post(
        f"/teams/{team.pk}/schedules/new/",
        {"agent": agent.pk, "cron": "every day", "timezone": "UTC", "prompt": "x"},
    )
    assert bad.status_code == 200 and "five fields" in bad.text

    created = web.post(
        f"/teams/{team.pk}/schedules/new/",
        {"agent": agent.pk, "cron": "0 9 * * 1-5", "timezone": "Europe/Paris",
         "prompt": "standup", "thread": thread.pk, "enabled": "on"},
    )  # fmt: skip
    schedule = Schedule.objects.get()
    assert created.status_code == 302 and created["Location"] == f"/schedules/{schedule.pk}/"
    assert schedule.thread == thread and schedule.next_run_at is not None
    detail = web.get(f"/schedules/{schedule.pk}/")
    assert "Europe/Paris" in detail.text and "Not fired yet." in detail.text

    edited = web.post(
        f"/schedules/{schedule.pk}/edit/",
        {"agent": agent.pk, "cron": "0 10 * * *", "timezone": "UTC", "prompt": "later"},
    )
    assert edited.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.enabled, schedule.thread.kind) == (
        "0 10 * * *",
        False,
        "direct",
    )
    assert web.post(f"/schedules/{schedule.pk}/delete/").status_code == 302
    assert not Schedule.objects.exists()


def test_a_trigger_page_shows_the_url_and_secret_once_then_its_calls(web, team, agent):
    created = web.post(f"/teams/{team.pk}/triggers/new/", {"kind": "github", "agent": agent.pk})
    assert created.status_code == 201
    trigger = Trigger.objects.get()
    assert "/hooks/ozh_" in created.text and 'id="trigger-secret"' in created.text

    bad = web.post(f"/teams/{team.pk}/triggers/new/", {"kind": "generic", "template": "{% if %}"})
    assert bad.status_code == 200 and "does not parse" in bad.text

    TriggerCall.objects.create(trigger=trigger, status_code=401, summary="Refused: signature")
    detail = web.get(f"/triggers/{trigger.pk}/")
    assert detail.status_code == 200
    assert "Refused: signature" in detail.text and "/hooks/ozh_" not in detail.text
    assert web.post(f"/triggers/{trigger.pk}/edit/", {"agent": agent.pk}).status_code == 302
    trigger.refresh_from_db()
    assert trigger.enabled is False


def test_members_read_but_do_not_write_and_other_teams_are_404(
    owner, member, team, agent, other_team
):
    schedule = schedule_create(actor=owner, agent=agent, cron="0 * * * *", prompt="p")
    trigger = trigger_create(actor=owner, kind="generic", agent=agent).trigger
    reader = web_client_for(member.user)
    for path in (
        f"/teams/{team.pk}/schedules/",
        f"/schedules/{schedule.pk}/",
        f"/teams/{team.pk}/triggers/",
        f"/triggers/{trigger.pk}/",
    ):
        page = reader.get(path)
        assert page.status_code == 200, path
        assert "/edit/" not in page.text and "schedules/new/" not in page.text
        assert "triggers/new/" not in page.text
    assert reader.get(f"/teams/{team.pk}/schedules/new/").status_code == 403
    assert reader.post(f"/schedules/{schedule.pk}/delete/").status_code == 403
    assert reader.get(f"/triggers/{trigger.pk}/edit/").status_code == 403

    outsider = web_client_for(other_team["owner"].user)
    for path in (
        f"/teams/{team.pk}/schedules/",
        f"/schedules/{schedule.pk}/",
        f"/schedules/{schedule.pk}/edit/",
        f"/triggers/{trigger.pk}/",
        f"/triggers/{trigger.pk}/edit/",
    ):
        assert outsider.get(path).status_code == 404, path
    assert outsider.post(f"/triggers/{trigger.pk}/delete/").status_code == 404
