"""An artifact's media type is `type/subtype` with optional parameters, at most 120 characters:
the service refuses anything else (the last line behind every door), and the upload page uses a
browser's content type only when it is one."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.artifacts.media_types import MEDIA_TYPE_MAX_LENGTH, is_media_type, media_type_clean
from apps.artifacts.models import ArtifactVersion
from apps.artifacts.services import artifact_put
from apps.core.errors import ServiceError


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.mark.parametrize(
    "value",
    [
        "text/plain",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "image/svg+xml",
        "text/plain; charset=utf-8",
        'multipart/mixed; boundary="a b; c"',
        "text/x-diff;a=1;b=2",
        "a/" + "b" * (MEDIA_TYPE_MAX_LENGTH - 2),
    ],
)
def test_media_types(value):
    assert is_media_type(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "text",
        "text/",
        "/plain",
        "text/plain/x",
        "text /plain",
        "text/plain\n",
        "text/html\r\nSet-Cookie: a=b",
        "text/plain; charset",
        "text/plain; charset=",
        'text/plain; a="unterminated',
        'text/plain; a="line\nbreak"',
        "tèxt/plain",
        "-text/plain",
        "a/" + "b" * (MEDIA_TYPE_MAX_LENGTH - 1),
        "a/" + "b" * 5_000,
    ],
)
def test_not_media_types(value):
    assert not is_media_type(value)


def test_clean_trims_and_says_what_is_expected():
    assert media_type_clean("  text/plain ") == "text/plain"
    with pytest.raises(ServiceError) as refused:
        media_type_clean("text/html\r\nSet-Cookie: a=b")
    assert refused.value.field == "media_type"
    assert "type/subtype" in refused.value.message


@pytest.mark.django_db
def test_the_service_refuses_a_bad_media_type_and_stores_nothing(team):
    with pytest.raises(ServiceError) as refused:
        artifact_put(team=team, name="a.html", content="x", media_type="a/" + "b" * 5_000)

    assert refused.value.field == "media_type"
    assert not ArtifactVersion.objects.exists()
    assert artifact_put(team=team, name="a.md", content="x").media_type == "text/markdown"


@pytest.mark.django_db
def test_the_upload_page_uses_the_browsers_type_only_when_it_is_one(web, team):
    url = f"/teams/{team.pk}/artifacts/"
    for name, sent in [("a.csv", "text/csv"), ("b.md", "text/" + "x" * 300)]:
        upload = SimpleUploadedFile(name, b"data", content_type=sent)
        assert web.post(url, {"name": name, "kind": "file", "file": upload}).status_code == 302

    stored = dict(ArtifactVersion.objects.values_list("artifact__name", "media_type"))
    assert stored == {"a.csv": "text/csv", "b.md": "text/markdown"}
