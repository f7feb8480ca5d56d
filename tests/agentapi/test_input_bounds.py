"""What the agent verbs refuse with a 400 at the REST door (the DRF views and the ASGI door in
front of Django): ids out of range, JSON nested too deep, media types that are not ones."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from apps.artifacts.models import ArtifactVersion
from apps.core.ids import MAX_ID
from apps.runs.creation import NewRun, run_create
from apps.runs.tokens import token_issue
from tests.agentapi.test_rest_door import call

TOO_BIG = MAX_ID + 1


@pytest.fixture
def token(manual_run_dispatch, agent, thread) -> str:
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    return token_issue(run=run)


def post(token: str, verb: str, data=None, **kwargs):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    if "content_type" in kwargs:
        return client.post(f"/api/v1/agent/{verb}/", data, **kwargs)
    return client.post(f"/api/v1/agent/{verb}/", data or {}, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("verb", "arguments", "field"),
    [
        ("ack", {"deliveries": [TOO_BIG]}, "deliveries"),
        ("ack", {"deliveries": [1, 0]}, "deliveries"),
        ("get_run", {"run_id": TOO_BIG}, "run_id"),
        ("get_artifact", {"name": "a", "version": TOO_BIG}, "version"),
        ("post_message", {"body": "hi", "thread": TOO_BIG}, "thread"),
        ("post_message", {"body": "hi", "thread": str(TOO_BIG)}, "thread"),
        ("post_message", {"body": "hi", "thread": 0}, "thread"),
        ("list_artifacts", {"thread": "99999999999999999999999"}, "thread"),
    ],
)
def test_an_id_out_of_range_is_a_400_naming_the_field(token, verb, arguments, field):
    response = post(token, verb, arguments)

    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


@pytest.mark.django_db
def test_the_largest_id_and_a_name_of_digits_are_looked_up(token):
    assert post(token, "get_run", {"run_id": MAX_ID}).status_code == 404
    assert post(token, "ack", {"deliveries": [MAX_ID]}).json() == {"acked": 0}
    assert post(token, "post_message", {"body": "hi", "thread": str(MAX_ID)}).status_code == 404
    # Not ASCII digits: a name, which no thread has.
    assert post(token, "post_message", {"body": "hi", "thread": "²"}).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("levels", [65, 30_000])
def test_json_nested_too_deep_is_a_400(token, levels):
    body = '{"body": ' + "[" * levels + "]" * levels + "}"

    response = post(token, "post_message", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "JSON nested deeper than 64 levels is not accepted.",
        "code": "too_deep",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
async def test_the_door_in_front_of_django_refuses_deep_json_too(token):
    body = ('{"body": ' + "[" * 30_000 + "]" * 30_000 + "}").encode()

    status, _, content = await call("/api/v1/agent/post_message/", token=token, body=body)

    assert status == 400
    assert json.loads(content)["code"] == "too_deep"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "media_type",
    ["text/html\r\nSet-Cookie: a=b", "text/" + "x" * 5_000, "html", "text/plain;", "a b/c"],
)
def test_put_artifact_refuses_what_is_not_a_media_type(token, media_type):
    response = post(
        token, "put_artifact", {"name": "a.txt", "content": "x", "media_type": media_type}
    )

    assert response.status_code == 400
    assert response.json()["field"] == "media_type"
    assert not ArtifactVersion.objects.exists()


@pytest.mark.django_db
def test_put_artifact_stores_a_media_type_with_parameters(token):
    response = post(
        token,
        "put_artifact",
        {"name": "a.txt", "content": "x", "media_type": "text/plain; charset=utf-8"},
    )

    assert response.status_code == 200, response.content
    assert ArtifactVersion.objects.get().media_type == "text/plain; charset=utf-8"
