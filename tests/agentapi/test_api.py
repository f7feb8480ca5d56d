"""POST /api/v1/agent/<verb>/ (what `oz` calls): run tokens only, the same verbs and results as
the MCP tools, errors as {detail, code, field}."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.agentapi.verbs import VERBS
from apps.runs.creation import NewRun, run_create
from apps.runs.models import Run, RunStatus
from apps.runs.preamble import TOOLS
from apps.runs.tokens import token_issue
from apps.runs.transitions import run_transition
from apps.threads.models import Delivery, Message
from tests.conftest import api_client_for, session_api_client_for
from tests.factories import AgentFactory, token_for


@pytest.fixture
def coder_run(manual_run_dispatch, agent, thread) -> tuple[Run, str]:
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    return run, token_issue(run=run)


@pytest.fixture
def reviewer(team):
    return AgentFactory(team=team, handle="reviewer")


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def post(client: APIClient, verb: str, data: dict | None = None):
    return client.post(f"/api/v1/agent/{verb}/", data or {}, format="json")


def test_every_verb_has_an_endpoint(coder_run, reviewer):
    run, token = coder_run
    client = client_for(token)
    arguments = {
        "post_message": {"body": "hi @reviewer"},
        "send_message": {"to": "@reviewer", "body": "hi"},
        "ack": {"deliveries": []},
        "delegate": {"to": "@reviewer", "goal": "review"},
        "get_run": {"run_id": run.pk},
        "put_artifact": {"name": "a.txt", "content": "x"},
        "get_artifact": {"name": "a.txt"},
        "memory_set": {"key": "k", "value": "v"},
        "memory_get": {"key": "k"},
    }

    reads = ["get_artifact", "memory_get"]  # after the writes
    # These need a change in a repository: tests/repos/test_agent_verbs.py calls them.
    needs_a_change = {"get_change", "get_review_comments"}
    for verb in [v for v in VERBS if v not in reads and v not in needs_a_change] + reads:
        response = post(client, verb, arguments.get(verb))
        assert response.status_code == 200, (verb, response.json())
        assert isinstance(response.json(), dict)


def test_results_match_the_database(coder_run, reviewer):
    run, token = coder_run
    client = client_for(token)

    sent = post(client, "send_message", {"to": ["reviewer"], "body": "look"}).json()
    delegated = post(client, "delegate", {"to": "reviewer", "goal": "fix"}).json()

    assert Message.objects.get(pk=sent["id"]).author_agent_id == run.agent_id
    assert list(Delivery.objects.filter(message_id=sent["id"]).values_list("agent", flat=True)) == [
        reviewer.pk
    ]
    assert Run.objects.get(pk=delegated["run"]).parent_id == run.pk


def test_input_errors_are_400_with_the_field(coder_run):
    _, token = coder_run
    client = client_for(token)

    missing = post(client, "send_message", {"body": "hi"})
    wrong_type = post(client, "ack", {"deliveries": "all"})
    not_json = client.post("/api/v1/agent/whoami/", "{oops", content_type="application/json")

    assert missing.status_code == 400
    assert missing.json()["field"] == "to" and missing.json()["code"] == "invalid"
    assert wrong_type.status_code == 400 and wrong_type.json()["field"] == "deliveries"
    assert not_json.status_code == 400 and not_json.json()["code"] == "parse_error"


def test_service_errors_keep_their_message_code_and_status(coder_run, other_team):
    _, token = coder_run
    client = client_for(token)

    unknown = post(client, "send_message", {"to": "@spy", "body": "hi"})
    missing_run = post(client, "get_run", {"run_id": 10**9})
    other_thread = post(client, "post_message", {"body": "x", "thread": other_team["thread"].pk})

    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_recipient" and unknown.json()["field"] == "to"
    assert "No agent or member of this team is called @spy" in unknown.json()["detail"]
    assert missing_run.status_code == 404 and missing_run.json()["code"] == "not_found"
    assert other_thread.status_code == 404


def test_an_unknown_verb_is_a_json_404(coder_run):
    _, token = coder_run

    response = post(client_for(token), "launch_missiles")

    assert response.status_code == 404
    assert "There is no agent verb 'launch_missiles'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer ozr_nope", "invalid_token"),
        ("Bearer", "not_authenticated"),
    ],
)
def test_no_valid_run_token_is_401(db, authorization, code):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    response = post(client, "whoami")

    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_token_stops_working_when_the_run_ends(coder_run):
    run, token = coder_run
    run_transition(run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.CANCELLED)

    response = post(client_for(token), "whoami")

    assert response.status_code == 401
    assert response.json()["detail"] == "The run token is unknown, or its run has ended."


def test_human_credentials_do_not_work_on_the_agent_api(owner):
    human_token = token_for(owner.user)
    token_client = api_client_for(owner.user)  # Authorization: Token ...
    bearer_client = client_for(human_token)
    session_client = session_api_client_for(owner.user)

    for client in (token_client, bearer_client, session_client):
        assert post(client, "whoami").status_code == 401


def test_run_tokens_do_not_work_on_the_human_api(coder_run):
    _, token = coder_run

    for authorization in (f"Bearer {token}", f"Token {token}"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        assert client.get("/api/v1/teams/").status_code in (401, 403)
        assert client.get("/api/v1/runs/").status_code in (401, 403)


def test_the_agent_endpoints_are_in_the_openapi_schema(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()

    for verb in VERBS:
        operation = schema["paths"][f"/api/v1/agent/{verb}/"]["post"]
        assert operation["security"] == [{"runToken": []}]
    assert schema["components"]["securitySchemes"]["runToken"]["scheme"] == "bearer"
    send = schema["components"]["schemas"]["AgentSendMessageInput"]
    assert set(send["properties"]) == {"to", "body", "thread"}


def test_bodies_are_limited_by_the_artifact_size_not_the_form_limit(coder_run, settings):
    _, token = coder_run
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.OZWEB_ARTIFACT_MAX_BYTES = 10_000
    client = client_for(token)

    fits = post(client, "put_artifact", {"name": "a.txt", "content": "x" * 5000})
    over_artifact = post(client, "put_artifact", {"name": "a.txt", "content": "x" * 12_000})
    over_request = post(client, "put_artifact", {"name": "a.txt", "content": "x" * 2_000_000})

    assert fits.status_code == 200
    assert over_artifact.status_code == 400 and over_artifact.json()["field"] == "content"
    assert over_request.status_code == 413 and over_request.json()["code"] == "too_large"


def test_the_run_preamble_names_every_verb():
    # apps.runs cannot import the verbs (it is below the agent API): its list must match.
    assert TOOLS.split(", ") == list(VERBS)
