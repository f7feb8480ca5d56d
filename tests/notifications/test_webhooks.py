"""Outgoing webhooks against real HTTP receivers on 127.0.0.1, driven by real domain events: a
run of a command agent (local sandbox) and a posted @mention."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from apps.agents.models import Harness
from apps.notifications.models import Notification, NotificationKind, Webhook, WebhookDelivery
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.threads.services import message_post
from tests.conftest import api_client_for, web_client_for
from tests.factories import AgentFactory
from tests.runs.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SHELL_AGENT = "python3 -u $OZWEB_AGENTS_DIR/shell_agent.py"
SECRET = "webhook-secret-for-tests"


def add_webhook(api, team, url: str, events: list[str], **fields) -> dict:
    response = api.post(
        f"/api/v1/teams/{team.pk}/webhooks/",
        {"url": url, "events": events, **fields},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def deliveries(api, webhook_id: int) -> list[dict]:
    response = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries/")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_receiver_gets_run_finished_with_a_valid_signature(
    owner, team, thread, receiver, settings
):
    settings.OZWEB_SANDBOX = "local"
    api = api_client_for(owner.user)
    hook = add_webhook(api, team, receiver.url, ["run.finished"], secret=SECRET)
    assert hook["has_secret"] is True and "secret" not in hook
    agent = AgentFactory(team=team, handle="shell", harness=Harness.COMMAND, command=SHELL_AGENT)

    message_post(actor=owner, thread=thread, body="@shell echo hello-webhook")
    run = Run.objects.get(agent=agent)
    execute_run(run.pk)

    got = receiver.next()
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-ozweb-signature"], expected)
    assert got.path == "/hooks/ozweb?x=1"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-ozweb-event"] == "run.finished"
    payload = json.loads(got.body)
    assert set(payload) == {"event", "team", "created_at", "data"}
    assert payload["event"] == "run.finished" and payload["team"] == team.pk
    data = payload["data"]
    assert data["run"] == run.pk and data["agent"] == "shell"
    assert data["status"] == RunStatus.SUCCEEDED and data["thread"] == thread.pk
    assert data["created_by"] == owner.user.pk  # the human whose mention started it
    assert data["url"] == f"/runs/{run.pk}/"
    [delivery] = wait_for(
        lambda: [d for d in deliveries(api, hook["id"]) if d["status"] == "succeeded"],
        what="the delivery to be recorded",
    )
    assert got.headers["x-ozweb-delivery"] == delivery["delivery_id"]
    assert [(a["number"], a["status_code"], a["ok"]) for a in delivery["attempts"]] == [
        (1, 200, True)
    ]
    assert receiver.received.empty()  # sent once
    # The same event put the end of the run in the inbox of whoever started it.
    [notification] = Notification.objects.filter(user=owner.user)
    assert notification.kind == NotificationKind.RUN_FINISHED and notification.data["run"] == run.pk


def test_a_receiver_that_fails_twice_gets_the_event_three_times(
    owner, member, team, thread, flaky_receiver, web
):
    api = api_client_for(owner.user)
    hook = add_webhook(api, team, flaky_receiver.url, ["message.mention"], secret=SECRET)

    message_post(actor=owner, thread=thread, body=f"@{member.user.username} have a look")

    received = [flaky_receiver.next() for _ in range(3)]
    # The same delivery, byte for byte, on every attempt: receivers can deduplicate.
    assert len({r.headers["x-ozweb-delivery"] for r in received}) == 1
    assert len({r.body for r in received}) == 1
    payload = json.loads(received[0].body)
    assert payload["event"] == "message.mention"
    assert payload["data"]["users"] == [member.user.pk]
    [delivery] = wait_for(
        lambda: [d for d in deliveries(api, hook["id"]) if d["status"] == "succeeded"],
        what="the third attempt to be recorded",
    )
    assert [(a["number"], a["status_code"], a["ok"]) for a in delivery["attempts"]] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert delivery["attempts"][0]["response_excerpt"] == "answered 500"
    assert delivery["next_attempt_at"] is None
    assert flaky_receiver.received.empty()
    # The webhook's page shows every attempt (to admins only).
    page = web.get(f"/webhooks/{hook['id']}/").content.decode()
    assert page.count("HTTP 500") == 2 and page.count("HTTP 200") == 1
    listing = web.get(f"/teams/{team.pk}/webhooks/").content.decode()
    assert f'id="webhook-{hook["id"]}"' in listing
    assert web_client_for(member.user).get(f"/webhooks/{hook['id']}/").status_code == 403


def test_a_slack_webhook_gets_one_line_of_text(owner, member, team, thread, receiver):
    api = api_client_for(owner.user)
    add_webhook(api, team, receiver.url, ["message.mention"], format="slack")

    message_post(actor=owner, thread=thread, body=f"@{member.user.username} ship it")

    got = receiver.next()
    body = json.loads(got.body)
    assert set(body) == {"text"}
    assert f"@{member.user.username}" in body["text"] and "ship it" in body["text"]
    assert "#general" in body["text"]
    assert "x-ozweb-signature" not in got.headers  # no secret, no signature


PRIVATE_URLS = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
]


@pytest.mark.django_db
def test_private_addresses_are_refused_without_the_setting(owner, team, settings):
    settings.OZWEB_ALLOW_PRIVATE_WEBHOOKS = False
    api = api_client_for(owner.user)
    for url in PRIVATE_URLS:
        response = api.post(
            f"/api/v1/teams/{team.pk}/webhooks/",
            {"url": url, "events": ["run.finished"]},
            format="json",
        )
        assert response.status_code == 400, (url, response.content)
        assert response.json()["code"] == "private_address", url
        assert response.json()["field"] == "url"
    hook = add_webhook(api, team, "http://93.184.215.14/hook", ["run.finished"])  # public: fine
    response = api.patch(f"/api/v1/webhooks/{hook['id']}/", {"url": PRIVATE_URLS[0]}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "private_address"


def test_an_address_turned_private_is_refused_at_send_time(
    owner, member, team, thread, receiver, settings
):
    """The check is made again before each attempt (a name may re-resolve elsewhere)."""
    settings.OZWEB_WEBHOOK_MAX_ATTEMPTS = 1
    api = api_client_for(owner.user)
    hook = add_webhook(api, team, receiver.url, ["message.mention"])
    settings.OZWEB_ALLOW_PRIVATE_WEBHOOKS = False

    message_post(actor=owner, thread=thread, body=f"@{member.user.username} hello")

    [delivery] = wait_for(
        lambda: [d for d in deliveries(api, hook["id"]) if d["status"] == "failed"],
        what="the refused attempt to be recorded",
    )
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None and "private" in attempt["error"]
    assert receiver.received.empty()


@pytest.mark.django_db
def test_webhook_input_is_bounded(owner, team):
    api = api_client_for(owner.user)
    url = f"/api/v1/teams/{team.pk}/webhooks/"
    cases = [
        ({"url": "http://example.com/", "events": ["run.exploded"]}, "events"),
        ({"url": "http://example.com/", "events": []}, "events"),
        ({"url": "ftp://example.com/", "events": ["run.finished"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/", "events": ["run.finished"]}, "url"),
        ({"url": "http://127.0.0.1/" + "a" * 2000, "events": ["run.finished"]}, "url"),
        ({"url": "http://127.0.0.1/", "events": ["run.finished"], "format": "xml"}, "format"),
        ({"url": "http://127.0.0.1/", "events": ["run.finished"], "secret": "s" * 300}, "secret"),
    ]
    for body, field in cases:
        response = api.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["field"] == field, body


@pytest.mark.django_db
def test_webhooks_are_for_the_teams_admins_only(owner, member, team, other_team):
    api = api_client_for(owner.user)
    hook = add_webhook(api, team, "http://127.0.0.1:9/", ["run.finished"], secret=SECRET)
    paths = [f"/api/v1/webhooks/{hook['id']}/", f"/api/v1/webhooks/{hook['id']}/deliveries/"]

    outsider = api_client_for(other_team["owner"].user)
    for path in paths:
        assert outsider.get(path).status_code == 404
    assert outsider.patch(paths[0], {"enabled": False}, format="json").status_code == 404
    assert outsider.delete(paths[0]).status_code == 404
    assert outsider.get(f"/api/v1/teams/{team.pk}/webhooks/").status_code == 404

    colleague = api_client_for(member.user)
    assert colleague.get(paths[0]).status_code == 403
    assert colleague.get(f"/api/v1/teams/{team.pk}/webhooks/").status_code == 403
    response = colleague.post(
        f"/api/v1/teams/{team.pk}/webhooks/",
        {"url": "http://127.0.0.1:9/", "events": ["run.finished"]},
        format="json",
    )
    assert response.status_code == 403

    response = api.patch(paths[0], {"events": ["change.merged"], "secret": ""}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["events"] == ["change.merged"] and not response.json()["has_secret"]
    listed = api.get(f"/api/v1/teams/{team.pk}/webhooks/").json()["results"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert api.delete(paths[0]).status_code == 204
    assert api.get(paths[0]).status_code == 404
    assert not WebhookDelivery.objects.exists()


@pytest.fixture
def celery_worker_in_thread(settings):
    """A real Celery worker (this process, memory broker) consuming the app's queue, as
    scaled mode's workers do; webhook attempts are then sent to it by name, retries with a
    countdown."""
    from celery.contrib.testing.worker import start_worker

    from ozweb.celery import app

    settings.OZWEB_RUN_DISPATCH = "celery"
    app.loader.import_default_modules()
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        yield


def test_scaled_mode_sends_each_attempt_as_a_celery_task(
    owner, member, team, thread, flaky_receiver, celery_worker_in_thread, monkeypatch
):
    from apps.notifications import sending

    def no_in_process_pool():
        raise AssertionError("scaled mode must not use the in-process pool")

    monkeypatch.setattr(sending, "_in_process_pool", no_in_process_pool)
    api = api_client_for(owner.user)
    hook = add_webhook(api, team, flaky_receiver.url, ["message.mention"], secret=SECRET)

    message_post(actor=owner, thread=thread, body=f"@{member.user.username} via celery")

    received = [flaky_receiver.next() for _ in range(3)]
    assert len({r.headers["x-ozweb-delivery"] for r in received}) == 1
    [delivery] = wait_for(
        lambda: [d for d in deliveries(api, hook["id"]) if d["status"] == "succeeded"],
        what="the worker to record the third attempt",
    )
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]


@pytest.mark.django_db
def test_an_admin_adds_a_webhook_from_its_page(owner, team, web, settings):
    page = f"/teams/{team.pk}/webhooks/"
    form = {"url": "http://127.0.0.1:9/hook", "events": ["run.finished", "change.merged"],
            "format": "json", "secret": SECRET}  # fmt: skip

    settings.OZWEB_ALLOW_PRIVATE_WEBHOOKS = False
    refused = web.post(page, form)
    assert refused.status_code == 200 and "webhooks go to public addresses only" in (
        refused.content.decode()
    )
    settings.OZWEB_ALLOW_PRIVATE_WEBHOOKS = True
    response = web.post(page, form)

    [hook] = Webhook.objects.filter(team=team)
    assert response.status_code == 302 and response["Location"] == f"/webhooks/{hook.pk}/"
    assert hook.events == ["run.finished", "change.merged"] and hook.secret() == SECRET
    assert SECRET not in hook.secret_encrypted  # encrypted at rest
    assert SECRET not in web.get(f"/webhooks/{hook.pk}/").content.decode()
    assert web.post(f"/webhooks/{hook.pk}/delete/").status_code == 302
    assert not Webhook.objects.exists()
