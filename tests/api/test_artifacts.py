import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.artifacts.models import Artifact, ArtifactVersion
from apps.threads.models import Message, MessageKind
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_put_as_json_creates_then_versions(owner_api, owner, team, thread):
    url = f"/api/v1/teams/{team.pk}/artifacts/"

    first = owner_api.post(
        url,
        {"name": "plan.md", "content": "# v1", "kind": "plan", "thread": thread.pk},
        format="json",
    )
    second = owner_api.post(
        url, {"name": "plan.md", "content": "# v2", "kind": "plan"}, format="json"
    )

    assert (first.status_code, second.status_code) == (201, 201)
    body = second.json()
    assert (body["name"], body["kind"], body["latest_version"], body["thread"]) == (
        "plan.md", "plan", 2, thread.pk,
    )  # fmt: skip
    assert body["latest"]["version"] == 2
    assert body["latest"]["sha256"] == hashlib.sha256(b"# v2").hexdigest()
    assert body["latest"]["media_type"] == "text/markdown"
    assert body["latest"]["author_user"] == owner.user.pk
    assert Message.objects.filter(thread=thread, kind=MessageKind.ARTIFACT).count() == 2


def test_put_as_multipart_upload(owner_api, team, owner):
    upload = SimpleUploadedFile("diagram.png", b"\x89PNG\r\n\x1a\n\0data", content_type="image/png")

    response = owner_api.post(
        f"/api/v1/teams/{team.pk}/artifacts/", {"file": upload}, format="multipart"
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "diagram.png"
    assert (body["latest"]["size"], body["latest"]["media_type"]) == (13, "image/png")
    assert body["latest"]["author_user"] == owner.user.pk


def test_an_upload_without_a_media_type_is_guessed_from_its_name(owner_api, team):
    upload = SimpleUploadedFile("fix.patch", b"+x\n", content_type="application/octet-stream")

    response = owner_api.post(
        f"/api/v1/teams/{team.pk}/artifacts/",
        {"file": upload, "kind": "patch", "name": "fixes/fix.patch"},
        format="multipart",
    )

    assert response.json()["name"] == "fixes/fix.patch"
    assert response.json()["latest"]["media_type"] == "text/x-diff"


def test_an_upload_over_the_limit_is_refused_clearly(owner_api, team, settings):
    settings.OZWEB_ARTIFACT_MAX_BYTES = 4
    upload = SimpleUploadedFile("big.bin", b"12345")

    response = owner_api.post(
        f"/api/v1/teams/{team.pk}/artifacts/", {"file": upload}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "too_large"
    assert response.json()["detail"] == "The artifact is 5 bytes; the limit is 4 bytes."
    assert not Artifact.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x.txt"}, "content"),
        ({"content": "no name"}, "name"),
        ({"name": "x", "content": "x", "kind": "movie"}, "kind"),
        ({"name": "x", "content": "x", "media_type": "text/html\r\nX-Evil: 1"}, "media_type"),
        ({"name": "docs", "content": "x", "kind": "link"}, "url"),
        ({"name": "docs", "content": "x", "kind": "link", "url": "javascript:alert(1)"}, "url"),
        ({"name": "../up", "content": "x"}, "name"),
    ],
)
def test_bad_puts_are_refused(api, team, payload, field):
    response = api.post(f"/api/v1/teams/{team.pk}/artifacts/", payload, format="json")

    assert response.status_code == 400
    assert field in response.json().get("errors", response.json())


def test_a_link_artifact(api, team):
    response = api.post(
        f"/api/v1/teams/{team.pk}/artifacts/",
        {"name": "docs", "content": "The docs", "kind": "link", "url": "https://example.com"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["latest"]["url"] == "https://example.com"


def test_viewers_read_but_cannot_put(viewer, team, put):
    put("x.txt")
    client = api_client_for(viewer.user)

    assert client.get(f"/api/v1/teams/{team.pk}/artifacts/").status_code == 200
    response = client.post(
        f"/api/v1/teams/{team.pk}/artifacts/", {"name": "y.txt", "content": "y"}, format="json"
    )
    assert response.status_code == 403


def test_list_and_filter_by_thread(owner_api, team, thread, put):
    put("b.md", thread=thread)
    put("a.txt")

    everything = owner_api.get(f"/api/v1/teams/{team.pk}/artifacts/").json()
    in_thread = owner_api.get(f"/api/v1/teams/{team.pk}/artifacts/?thread={thread.pk}").json()

    assert [a["name"] for a in everything["results"]] == ["a.txt", "b.md"]
    assert [a["name"] for a in in_thread["results"]] == ["b.md"]


def test_detail_versions_and_one_version(owner_api, put, agent):
    put("notes.txt", "one", author_agent=agent)
    latest = put("notes.txt", "two!")
    artifact_id = latest.artifact_id

    detail = owner_api.get(f"/api/v1/artifacts/{artifact_id}/").json()
    versions = owner_api.get(f"/api/v1/artifacts/{artifact_id}/versions/").json()
    first = owner_api.get(f"/api/v1/artifacts/{artifact_id}/versions/1/").json()

    assert detail["latest"]["version"] == 2
    assert detail["latest"]["download_url"] == (
        f"/api/v1/artifacts/{artifact_id}/versions/2/download/"
    )
    assert [v["version"] for v in versions["results"]] == [2, 1]
    assert (first["size"], first["author_agent"]) == (3, agent.pk)


def test_an_unknown_version_is_404(api, put):
    version = put("notes.txt")

    response = api.get(f"/api/v1/artifacts/{version.artifact_id}/versions/7/")

    assert response.status_code == 404


def test_download_streams_the_bytes_as_an_attachment(owner_api, put):
    data = bytes(range(256)) * 4
    version = put("dir/blob.bin", data, media_type="application/octet-stream")

    response = owner_api.get(f"/api/v1/artifacts/{version.artifact_id}/versions/1/download/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="blob.bin"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_bytes_missing_from_the_store_are_a_clear_404_not_a_500(owner_api, put):
    version = put("notes.md", "# gone")
    version.content.storage.delete(version.content.name)  # lost behind ozweb's back

    response = owner_api.get(f"/api/v1/artifacts/{version.artifact_id}/versions/1/download/")

    assert response.status_code == 404
    assert "missing from the artifact store" in response.json()["detail"]


def test_an_html_download_is_never_rendered_inline(api, put):
    version = put("page.html", "<script>alert(1)</script>")

    response = api.get(
        f"/api/v1/artifacts/{version.artifact_id}/versions/1/download/", HTTP_ACCEPT="text/html"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_download_answers_whatever_the_client_accepts(api, put):
    version = put("a.txt", "hi")

    response = api.get(
        f"/api/v1/artifacts/{version.artifact_id}/versions/1/download/",
        HTTP_ACCEPT="application/octet-stream",
    )

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"hi"


def test_a_stored_media_type_that_is_not_one_is_sent_as_bytes(api, put):
    version = put("odd.txt", "x")
    # Stored before media types were checked (the service refuses it now).
    ArtifactVersion.objects.filter(pk=version.pk).update(media_type="text/html\r\nX-A: b")

    response = api.get(f"/api/v1/artifacts/{version.artifact_id}/versions/1/download/")

    assert response["Content-Type"] == "application/octet-stream"


def test_viewers_can_download(viewer, put):
    version = put("a.txt", "hi")

    response = api_client_for(viewer.user).get(
        f"/api/v1/artifacts/{version.artifact_id}/versions/1/download/"
    )

    assert response.status_code == 200
