"""Inbound triggers: a generic JSON call and a signed GitHub issue_comment start the agent (a
real run of a command agent); refusals (bad signature, too large, unknown token, deep JSON);
every call logged."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import Client, RequestFactory

from apps.automations.hooks import _read_body
from apps.automations.models import Trigger, TriggerCall
from apps.core.secretbox import token_hash
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.threads.models import Message
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)

ISSUE = {
    "number": 42,
    "title": "Crash on empty input",
    "body": "Steps: run it with no arguments.",
    "html_url": "https://github.com/acme/app/issues/42",
    "user": {"login": "octocat"},
}


def create_trigger(api, team, **body) -> dict:
    response = api.post(f"/api/v1/teams/{team.pk}/triggers/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def hook_path(url: str) -> str:
    return url[url.index("/hooks/") :]


def post_json(path: str, payload: object, **headers) -> object:
    return Client().post(path, json.dumps(payload), content_type="application/json", **headers)


def signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_generic_call_posts_the_rendered_payload_for_the_agent_and_it_runs(
    api, team, echo_agent, thread
):
    created = create_trigger(
        api, team, agent=echo_agent.pk, thread=thread.pk, kind="generic",
        template="Deploy {{ payload.service }} failed: {{ payload.error }} <{{ payload.env }}>",
    )  # fmt: skip
    assert created["url"].startswith("http://testserver/hooks/ozh_")
    assert created["secret"] is None
    trigger = Trigger.objects.get(pk=created["id"])
    token = hook_path(created["url"]).split("/")[2]
    assert trigger.token_hash == token_hash(token) and token not in trigger.token_hash

    response = post_json(
        hook_path(created["url"]), {"service": "api", "error": "exit 3", "env": "prod"}
    )
    assert response.status_code == 202
    message = Message.objects.get(pk=response.json()["message"])
    # Not HTML-escaped: a chat message, which the feed renders safely as Markdown.
    assert message.body == "@bot Deploy api failed: exit 3 <prod>"
    assert message.thread == thread and message.author_user is None
    assert message.data["trigger"] == trigger.pk

    run = Run.objects.get(agent=echo_agent)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "Deploy api failed" in run.result_text

    [call] = TriggerCall.objects.filter(trigger=trigger)
    assert call.status_code == 202 and call.message == message and "@bot" in call.summary


def test_a_signed_github_issue_comment_hands_the_mentioned_agent_the_issue(
    api, team, echo_agent, thread
):
    AgentFactory(team=team, handle="other")
    created = create_trigger(api, team, kind="github", thread=thread.pk)
    secret = created["secret"]
    assert secret and created["agent"] is None
    body = json.dumps(
        {
            "action": "created",
            "issue": ISSUE,
            "comment": {
                "body": "@bot can you take this? cc @someone-on-github",
                "html_url": "https://github.com/acme/app/issues/42#issuecomment-1",
                "user": {"login": "hubot"},
            },
            "repository": {"full_name": "acme/app"},
        }
    ).encode()
    response = Client().post(
        hook_path(created["url"]), body, content_type="application/json",
        headers={"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": signed(secret, body)},
    )  # fmt: skip
    assert response.status_code == 202, response.json()
    message = Message.objects.get(pk=response.json()["message"])
    assert message.body.startswith("@bot hubot commented on GitHub issue #42 in acme/app")
    assert "Crash on empty input" in message.body and ISSUE["html_url"] in message.body
    assert "@someone-on-github" in message.body  # text from outside addresses nobody
    assert [d.agent.handle for d in message.deliveries.all()] == ["bot"]

    run = Run.objects.get(agent=echo_agent)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "Crash on empty input" in run.result_text
    call = TriggerCall.objects.get(trigger_id=created["id"])
    assert call.event == "issue_comment" and call.status_code == 202


def test_github_refuses_a_bad_signature_and_notes_other_events(api, team, agent, thread):
    created = create_trigger(api, team, kind="github", agent=agent.pk)
    path, secret = hook_path(created["url"]), created["secret"]
    body = json.dumps({"action": "opened", "issue": {**ISSUE, "body": "@coder look"}}).encode()
    events = {"X-GitHub-Event": "issues"}

    bad = Client().post(
        path, body, content_type="application/json",
        headers={**events, "X-Hub-Signature-256": signed("not-the-secret", body)},
    )  # fmt: skip
    assert bad.status_code == 401
    unsigned = Client().post(path, body, content_type="application/json", headers=events)
    assert unsigned.status_code == 401
    assert not Message.objects.filter(data__trigger=created["id"]).exists()

    opened = Client().post(
        path, body, content_type="application/json",
        headers={**events, "X-Hub-Signature-256": signed(secret, body)},
    )  # fmt: skip
    assert opened.status_code == 202 and opened.json()["message"]

    closed = json.dumps({"action": "closed", "issue": ISSUE}).encode()
    ignored = Client().post(
        path, closed, content_type="application/json",
        headers={**events, "X-Hub-Signature-256": signed(secret, closed)},
    )  # fmt: skip
    assert ignored.status_code == 202
    assert ignored.json()["message"] is None and "Ignored" in ignored.json()["note"]

    codes = list(
        TriggerCall.objects.filter(trigger_id=created["id"])
        .order_by("id")
        .values_list("status_code", flat=True)
    )
    assert codes == [401, 401, 202, 202]  # every call is logged


def test_refusals_too_large_unknown_token_deep_json_disabled(api, team, agent, settings):
    settings.OZWEB_THROTTLE_AUTH_FAILURES = "3/minute"
    created = create_trigger(api, team, agent=agent.pk)
    path = hook_path(created["url"])

    huge = Client().post(path, b"x" * (1024 * 1024 + 1), content_type="application/json")
    assert huge.status_code == 413
    deep = Client().post(path, "[" * 200 + "]" * 200, content_type="application/json")
    assert deep.status_code == 400 and "nested" in deep.json()["detail"]
    not_json = Client().post(path, b"hello", content_type="text/plain")
    assert not_json.status_code == 400
    assert Client().get(path).status_code == 405

    Trigger.objects.filter(pk=created["id"]).update(enabled=False)
    assert post_json(path, {"a": 1}).status_code == 409
    codes = TriggerCall.objects.filter(trigger_id=created["id"]).values_list(
        "status_code", flat=True
    )
    assert sorted(codes) == [400, 400, 409, 413]

    for _ in range(3):
        assert post_json("/hooks/ozh_not-a-token/", {}).status_code == 404
    # Guessing tokens is throttled per address, like other credentials: even a good one now.
    assert post_json("/hooks/ozh_not-a-token/", {}).status_code == 429
    assert post_json(path, {}).status_code == 429


def test_a_body_without_content_length_is_read_no_further_than_the_limit(settings):
    settings.OZWEB_HOOK_MAX_BYTES = 10
    request = RequestFactory().post("/hooks/x/", b"0123456789ABC", content_type="text/plain")
    del request.META["CONTENT_LENGTH"]
    assert _read_body(request) is None
    request = RequestFactory().post("/hooks/x/", b"0123456789", content_type="text/plain")
    assert _read_body(request) == b"0123456789"


def test_a_template_that_does_not_parse_is_a_400_at_creation(api, team, agent):
    for template in ["{% if %}", "{% include 'base.html' %}", "{% debug %}", "{% load static %}"]:
        response = api.post(
            f"/api/v1/teams/{team.pk}/triggers/",
            {"agent": agent.pk, "template": template},
            format="json",
        )
        assert response.status_code == 400 and response.json()["field"] == "template", template
    assert not Trigger.objects.exists()


def test_listing_and_reading_show_no_secret_and_other_teams_are_404(
    api, team, agent, other_team, viewer
):
    from tests.conftest import api_client_for

    created = create_trigger(api, team, agent=agent.pk)
    listed = api.get(f"/api/v1/teams/{team.pk}/triggers/").json()["results"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "url" not in listed[0] and "secret" not in listed[0]
    detail = api.get(f"/api/v1/triggers/{created['id']}/").json()
    assert "url" not in detail and detail["kind"] == "generic"

    outsider = api_client_for(other_team["owner"].user)
    for method in ("get", "patch", "delete"):
        assert getattr(outsider, method)(f"/api/v1/triggers/{created['id']}/").status_code == 404
    assert outsider.get(f"/api/v1/triggers/{created['id']}/calls/").status_code == 404
    assert outsider.get(f"/api/v1/teams/{team.pk}/triggers/").status_code == 404
    # Their agent's id is no agent of this team.
    response = api.post(
        f"/api/v1/teams/{team.pk}/triggers/", {"agent": other_team["agent"].pk}, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == "agent"
    # Viewers read, admins write.
    reader = api_client_for(viewer.user)
    assert reader.get(f"/api/v1/triggers/{created['id']}/calls/").status_code == 200
    assert (
        reader.patch(
            f"/api/v1/triggers/{created['id']}/", {"enabled": False}, format="json"
        ).status_code
        == 403
    )
    assert (
        api.patch(f"/api/v1/triggers/{created['id']}/", {"enabled": False}, format="json").json()[
            "enabled"
        ]
        is False
    )
    assert api.delete(f"/api/v1/triggers/{created['id']}/").status_code == 204
    assert not Trigger.objects.exists()


def test_github_pings_and_form_encoded_deliveries(api, team, agent):
    from urllib.parse import urlencode

    created = create_trigger(api, team, kind="github", agent=agent.pk)
    path, secret = hook_path(created["url"]), created["secret"]
    ping = b'{"zen": "Keep it logically awesome."}'
    answer = Client().post(
        path, ping, content_type="application/json",
        headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": signed(secret, ping)},
    )  # fmt: skip
    assert answer.status_code == 202 and answer.json()["message"] is None

    payload = {"action": "opened", "issue": {**ISSUE, "body": "@coder please"}}
    form = urlencode({"payload": json.dumps(payload)}).encode()
    answer = Client().post(
        path, form, content_type="application/x-www-form-urlencoded",
        headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": signed(secret, form)},
    )  # fmt: skip
    assert answer.status_code == 202
    message = Message.objects.get(pk=answer.json()["message"])
    assert message.body.startswith("@coder octocat opened GitHub issue #42")
