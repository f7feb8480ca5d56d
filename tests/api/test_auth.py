"""Every endpoint needs credentials; both a token and a session cookie are credentials."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import api_client_for, session_api_client_for

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/teams/"),
    ("post", "/api/v1/teams/"),
    ("get", "/api/v1/teams/{team}/"),
    ("get", "/api/v1/teams/{team}/members/"),
    ("post", "/api/v1/teams/{team}/members/"),
    ("patch", "/api/v1/teams/{team}/members/{member}/"),
    ("delete", "/api/v1/teams/{team}/members/{member}/"),
    ("get", "/api/v1/teams/{team}/invitations/"),
    ("get", "/api/v1/invitations/"),
    ("get", "/api/v1/teams/{team}/agents/"),
    ("post", "/api/v1/teams/{team}/agents/"),
    ("get", "/api/v1/agents/{agent}/"),
    ("patch", "/api/v1/agents/{agent}/"),
    ("delete", "/api/v1/agents/{agent}/"),
    ("get", "/api/v1/teams/{team}/threads/"),
    ("post", "/api/v1/teams/{team}/threads/"),
    ("get", "/api/v1/threads/{thread}/"),
    ("get", "/api/v1/threads/{thread}/messages/"),
    ("post", "/api/v1/threads/{thread}/messages/"),
]


@pytest.fixture
def ids(team, owner, agent, thread):
    return {"team": team.pk, "member": owner.pk, "agent": agent.pk, "thread": thread.pk}


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_unauthenticated_requests_get_401(ids, method, path):
    response = getattr(APIClient(), method)(path.format(**ids), {}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_wrong_token_gets_401(ids, method, path):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert getattr(client, method)(path.format(**ids), {}, format="json").status_code == 401


@pytest.mark.parametrize("make_client", [api_client_for, session_api_client_for])
@pytest.mark.parametrize(
    "path",
    [p for m, p in ENDPOINTS if m == "get"],
)
def test_every_read_works_with_a_token_and_with_a_session(ids, owner, make_client, path):
    response = make_client(owner.user).get(path.format(**ids))

    assert response.status_code == 200


def test_session_writes_need_the_csrf_token(owner, thread):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner.user)

    response = client.post(f"/api/v1/threads/{thread.pk}/messages/", {"body": "hi"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_token_writes_need_no_csrf_token(owner, thread):
    client = api_client_for(owner.user)
    client.handler.enforce_csrf_checks = True

    response = client.post(f"/api/v1/threads/{thread.pk}/messages/", {"body": "hi"}, format="json")

    assert response.status_code == 201


def test_the_schema_is_openapi_3_covering_the_api(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/threads/{thread_id}/messages/" in schema["paths"]
    assert "/api/v1/agents/{agent_id}/" in schema["paths"]
    agent_input = schema["components"]["schemas"]["AgentInput"]["properties"]["secrets"]
    assert agent_input["writeOnly"] is True


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_the_docs_pages_render(api, path):
    assert api.get(path).status_code == 200
