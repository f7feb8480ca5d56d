"""People add artifacts (and new versions) from the artifacts page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.artifacts.models import Artifact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def test_a_member_uploads_a_file_and_then_a_new_version(web, team, thread):
    url = f"/teams/{team.pk}/artifacts/"
    first = web.post(
        url,
        {"name": "notes.txt", "kind": "file", "thread": thread.pk,
         "file": SimpleUploadedFile("notes.txt", b"one", content_type="text/plain")},
    )  # fmt: skip
    assert first.status_code == 302
    second = web.post(url, {"name": "notes.txt", "kind": "file", "text": "two"})
    artifact = Artifact.objects.get(team=team, name="notes.txt")
    assert second["Location"].endswith(f"/artifacts/{artifact.pk}/?v=2")
    assert artifact.latest_version == 2 and artifact.thread == thread
    assert [v.content.read() for v in artifact.versions.order_by("version")] == [b"one", b"two"]


def test_the_form_says_what_is_wrong(web, team, settings):
    settings.OZWEB_ARTIFACT_MAX_BYTES = 3
    url = f"/teams/{team.pk}/artifacts/"
    empty = web.post(url, {"name": "x.txt", "kind": "file"}).content.decode()
    assert "Upload a file or write the content." in empty
    big = web.post(url, {"name": "x.txt", "kind": "file", "text": "too long"}).content.decode()
    assert "the limit is 3 bytes" in big
    assert not Artifact.objects.exists()


def test_a_viewer_cannot_upload(viewer, team):
    from tests.conftest import web_client_for

    response = web_client_for(viewer.user).post(
        f"/teams/{team.pk}/artifacts/", {"name": "x.txt", "kind": "file", "text": "x"}
    )
    assert response.status_code == 403
    assert not Artifact.objects.exists()
