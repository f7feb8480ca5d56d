"""The OpenAPI schema says what the API does: pages, errors, nullability, body types. (That
the server keeps to it, request by request, is tests/api/test_schemathesis.py.)"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operation(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def component(schema: dict, response: dict) -> dict:
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_list_is_documented_as_the_page_it_is(schema):
    listed = operation(schema, "/api/v1/teams/{team_id}/agents/", "get")

    page = component(schema, listed["responses"]["200"])

    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    assert page["properties"]["results"]["type"] == "array"
    assert {p["name"] for p in listed["parameters"]} >= {"limit", "offset"}


def test_errors_are_documented_with_their_shape(schema):
    created = operation(schema, "/api/v1/teams/{team_id}/threads/", "post")

    assert {"400", "401", "403", "404", "409", "413", "429"} <= set(created["responses"])
    error = component(schema, created["responses"]["400"])
    assert set(error["required"]) == {"detail", "code"}
    assert "Retry-After" in created["responses"]["429"]["headers"]


def test_unread_is_always_a_count(schema, owner_api, thread):
    unread = schema["components"]["schemas"]["ThreadOutput"]["properties"]["unread"]

    response = owner_api.get(f"/api/v1/threads/{thread.pk}/")

    assert unread["type"] == "integer" and not unread.get("nullable")
    assert response.json()["unread"] == 0


def test_agent_verbs_take_json_only(schema):
    body = operation(schema, "/api/v1/agent/post_message/", "post")["requestBody"]

    assert list(body["content"]) == ["application/json"]


def test_artifacts_take_json_or_a_multipart_file(schema):
    body = operation(schema, "/api/v1/teams/{team_id}/artifacts/", "post")["requestBody"]
    upload = body["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]

    assert list(body["content"]) == ["application/json", "multipart/form-data"]
    assert schema["components"]["schemas"][upload]["properties"]["file"]["format"] == "binary"


def test_a_download_is_documented_with_any_media_type(schema):
    download = "/api/v1/artifacts/{artifact_id}/versions/{version}/download/"

    assert list(operation(schema, download, "get")["responses"]["200"]["content"]) == ["*/*"]


def test_a_validation_error_has_the_error_shape(owner_api):
    response = owner_api.post("/api/v1/teams/", {}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["field"], body["code"]) == ("name", "required")
    assert body["detail"] == "name: This field is required."
    assert body["errors"] == {"name": ["This field is required."]}


def test_values_of_another_json_type_are_refused_not_coerced(owner_api, team):
    response = owner_api.patch(f"/api/v1/teams/{team.pk}/", {"hop_limit": "5"}, format="json")

    assert response.status_code == 400
    assert (response.json()["field"], response.json()["detail"]) == (
        "hop_limit",
        "hop_limit: Must be an integer.",
    )


def test_a_form_body_is_415(owner_api, team):
    url = f"/api/v1/teams/{team.pk}/threads/"

    response = owner_api.post(url, {"name": "x"}, format="multipart")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_but_an_artifact_upload_is_multipart(owner_api, team):
    upload = SimpleUploadedFile("notes.txt", b"notes")

    response = owner_api.post(
        f"/api/v1/teams/{team.pk}/artifacts/", {"file": upload}, format="multipart"
    )

    assert response.status_code == 201


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "offset=-1"])
def test_a_page_out_of_range_is_400(owner_api, query):
    response = owner_api.get(f"/api/v1/teams/?{query}")

    assert response.status_code == 400
    assert response.json()["field"] == query.split("=")[0]


def test_a_path_that_names_nothing_is_a_json_404(owner_api):
    response = owner_api.get("/api/v1/agents/not-a-number/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_body_over_the_size_limit_is_413(owner_api, team, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100  # Django's limit on form fields
    upload = SimpleUploadedFile("notes.txt", b"notes")

    response = owner_api.post(
        f"/api/v1/teams/{team.pk}/artifacts/",
        {"file": upload, "name": "n" * 150},
        format="multipart",
    )

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
