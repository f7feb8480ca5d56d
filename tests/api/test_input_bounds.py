"""Input the REST API refuses with a 400 rather than a 500: ids out of range in query
parameters and bodies, JSON nested too deep, media types that are not media types."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.artifacts.models import ArtifactVersion
from apps.core.ids import MAX_ID

pytestmark = pytest.mark.django_db

TOO_BIG = MAX_ID + 1


@pytest.mark.parametrize("value", [str(TOO_BIG), "0", "-3", "99999999999999999999999", "x"])
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/runs/?thread={}", "thread"),
        ("/api/v1/runs/?agent={}", "agent"),
        ("/api/v1/teams/{team}/artifacts/?thread={}", "thread"),
    ],
)
def test_an_id_filter_out_of_range_is_a_400(api, team, path, name, value):
    response = api.get(path.format(value, team=team.pk))

    assert response.status_code == 400, response.content
    assert response.json()["field"] == name


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/threads/{thread}/messages/?since={}",
        "/api/v1/runs/{run}/events/?since={}",
    ],
)
def test_a_seq_out_of_range_is_a_400(api, thread, agent, path):
    from apps.runs.creation import NewRun, run_create

    run = run_create(NewRun(agent=agent, prompt="x", thread=thread))

    response = api.get(path.format(TOO_BIG, thread=thread.pk, run=run.pk))

    assert response.status_code == 400
    assert response.json()["field"] == "since"
    assert api.get(path.format(MAX_ID, thread=thread.pk, run=run.pk)).status_code == 200


def test_the_largest_id_is_looked_up_and_not_found(api):
    assert api.get(f"/api/v1/runs/?thread={MAX_ID}").json()["results"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/runs/", {"agent": TOO_BIG, "prompt": "x"}, "agent"),
        ("/api/v1/runs/", {"agent": "{agent}", "prompt": "x", "thread": TOO_BIG}, "thread"),
        ("/api/v1/teams/{team}/threads/", {"kind": "direct", "agent": TOO_BIG}, "agent"),
        ("/api/v1/teams/{team}/artifacts/", {"name": "a", "content": "", "thread": 0}, "thread"),
    ],
)
def test_an_id_out_of_range_in_a_body_is_a_400(api, team, agent, path, body, field):
    body = {k: agent.pk if v == "{agent}" else v for k, v in body.items()}

    response = api.post(path.format(team=team.pk), body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


# -- JSON nesting -----------------------------------------------------------------------------


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


@pytest.mark.parametrize("levels", [65, 5_000, 100_000])
def test_json_nested_too_deep_is_a_400_with_a_clear_message(api, team, levels):
    response = api.post(
        f"/api/v1/teams/{team.pk}/threads/", nested(levels), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["detail"] == "JSON nested deeper than 64 levels is not accepted."


def test_json_within_the_limit_is_parsed_and_validated(api, team):
    body = json.dumps({"name": "deep", "topic": "t", "extra": json.loads(nested(62))})

    response = api.post(f"/api/v1/teams/{team.pk}/threads/", body, content_type="application/json")

    assert response.status_code == 201


def test_the_limit_is_a_setting_and_brackets_in_strings_do_not_count(api, team, settings):
    settings.OZWEB_JSON_MAX_DEPTH = 3
    url = f"/api/v1/teams/{team.pk}/threads/"

    inside_strings = api.post(url, {"name": "x", "topic": "[[[[[[[["}, format="json")
    deep = api.post(url, {"name": "y", "extra": [[[1]]]}, format="json")

    assert inside_strings.status_code == 201
    assert (deep.status_code, deep.json()["detail"]) == (
        400,
        "JSON nested deeper than 3 levels is not accepted.",
    )


def test_another_charset_is_measured_once_decoded(api, team):
    body = nested(100).encode("utf-16")

    response = api.post(
        f"/api/v1/teams/{team.pk}/threads/", body, content_type="application/json; charset=utf-16"
    )

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


# -- media types ------------------------------------------------------------------------------

BAD_MEDIA_TYPES = [
    "text/html\r\nSet-Cookie: a=b",
    "text/html\nX: y",
    "text/" + "x" * 5_000,
    "text",
    "text/plain; charset",
    "téxt/plain",
    'text/plain; a="b\r\n"',
]


@pytest.mark.parametrize("media_type", BAD_MEDIA_TYPES)
def test_a_media_type_that_is_not_one_is_a_400(api, team, media_type):
    response = api.post(
        f"/api/v1/teams/{team.pk}/artifacts/",
        {"name": "a.txt", "content": "x", "media_type": media_type},
        format="json",
    )

    assert response.status_code == 400
    assert "media_type" in response.json()["errors"]
    assert not ArtifactVersion.objects.exists()


@pytest.mark.parametrize(
    "media_type",
    ["text/plain", "text/plain; charset=utf-8", "application/vnd.api+json", 'text/x; a="b c"'],
)
def test_a_media_type_with_parameters_is_stored(api, team, media_type):
    response = api.post(
        f"/api/v1/teams/{team.pk}/artifacts/",
        {"name": "a.txt", "content": "x", "media_type": media_type},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert ArtifactVersion.objects.get().media_type == media_type


def test_an_uploads_own_content_type_is_used_only_when_it_is_a_media_type(api, team):
    url = f"/api/v1/teams/{team.pk}/artifacts/"
    good = SimpleUploadedFile("a.csv", b"a,b", content_type="text/csv")
    bad = SimpleUploadedFile("b.md", b"# b", content_type="text/" + "x" * 200)

    assert api.post(url, {"file": good}, format="multipart").status_code == 201
    assert api.post(url, {"file": bad}, format="multipart").status_code == 201

    stored = dict(ArtifactVersion.objects.values_list("artifact__name", "media_type"))
    assert stored == {"a.csv": "text/csv", "b.md": "text/markdown"}
