import hashlib

import pytest

from apps.artifacts import selectors, services
from apps.artifacts.models import Artifact, ArtifactVersion, MemoryNote
from apps.core.errors import NotFound, PermissionDenied, ServiceError
from apps.threads.models import Message, MessageKind

pytestmark = pytest.mark.django_db


def test_putting_an_existing_name_adds_a_version(put, team):
    first = put("notes.md", "one")
    second = put("notes.md", "two")

    artifact = Artifact.objects.get(team=team, name="notes.md")
    assert (first.version, second.version) == (1, 2)
    assert artifact.latest_version == 2
    assert list(artifact.versions.order_by("version").values_list("version", "size")) == [
        (1, 3),
        (2, 3),
    ]


def test_a_version_records_hash_size_media_type_and_author(put, agent):
    version = put("plan.md", "# Plan\n", kind="plan", author_agent=agent)

    assert version.sha256 == hashlib.sha256(b"# Plan\n").hexdigest()
    assert version.size == 7
    assert version.media_type == "text/markdown"
    assert version.author_agent == agent
    with version.content.open("rb") as stored:
        assert stored.read() == b"# Plan\n"


def test_the_same_content_has_the_same_sha(put):
    a = put("a.txt", "same bytes")
    b = put("b.txt", b"same bytes")
    c = put("a.txt", "other bytes")

    assert a.sha256 == b.sha256
    assert c.sha256 != a.sha256


def test_the_size_limit_is_refused_with_a_clear_message(put, settings):
    settings.OZWEB_ARTIFACT_MAX_BYTES = 10

    with pytest.raises(ServiceError) as refused:
        put("big.bin", b"x" * 11)

    assert refused.value.code == "too_large"
    assert refused.value.message == "The artifact is 11 bytes; the limit is 10 bytes."
    assert not ArtifactVersion.objects.exists()


@pytest.mark.parametrize("url", ["", "javascript:alert(1)", "ftp://example.com/x"])
def test_a_link_needs_an_http_url(put, url):
    with pytest.raises(ServiceError) as refused:
        put("docs", "the docs", kind="link", url=url)

    assert refused.value.field == "url"


@pytest.mark.parametrize("name", ["", "../etc/passwd", "-starts-with-dash", "x" * 201])
def test_bad_names_are_refused(put, name):
    with pytest.raises(ServiceError) as refused:
        put(name)

    assert refused.value.field == "name"


def test_each_version_posts_one_card_in_its_thread(put, thread):
    put("report.md", "v1", kind="report", thread=thread)
    put("report.md", "v2", kind="report")  # keeps the artifact's thread

    cards = list(Message.objects.filter(thread=thread, kind=MessageKind.ARTIFACT).order_by("seq"))
    assert [(c.data["name"], c.data["version"]) for c in cards] == [
        ("report.md", 1),
        ("report.md", 2),
    ]
    assert cards[1].data["size"] == 2
    assert cards[1].data["media_type"] == "text/markdown"


def test_an_artifact_without_a_thread_posts_no_card(put):
    put("loose.txt")

    assert not Message.objects.filter(kind=MessageKind.ARTIFACT).exists()


def test_a_viewer_cannot_put(viewer):
    with pytest.raises(PermissionDenied):
        services.artifact_put_as_human(actor=viewer, name="x.txt", content="x")


def test_a_human_put_records_the_user(member):
    version = services.artifact_put_as_human(actor=member, name="x.txt", content="x")

    assert version.author_user == member.user


def test_access_artifact_hides_other_teams(put, owner, other_team):
    ours = put("ours.txt")

    assert selectors.access_artifact(user=owner.user, artifact_id=ours.artifact_id) == (
        owner,
        ours.artifact,
    )
    with pytest.raises(NotFound):
        selectors.access_artifact(user=other_team["owner"].user, artifact_id=ours.artifact_id)


# -- team memory ------------------------------------------------------------------------------


def test_memory_set_then_get(team, agent):
    services.memory_set(team=team, key="deploy:host", value="db1", agent=agent)

    note = selectors.memory_get(team=team, key="deploy:host")
    assert (note.value, note.updated_by_agent) == ("db1", agent)


def test_memory_set_updates_in_place(team, member):
    services.memory_set(team=team, key="style", value="tabs")
    services.memory_set_as_human(actor=member, key="style", value="spaces")

    assert MemoryNote.objects.filter(team=team).count() == 1
    note = selectors.memory_get(team=team, key="style")
    assert (note.value, note.updated_by_user) == ("spaces", member.user)


def test_memory_list_by_prefix(team, other_team):
    for key in ["conventions/tests", "conventions/naming", "deploy"]:
        services.memory_set(team=team, key=key, value="x")
    services.memory_set(team=other_team["team"], key="conventions/secret", value="x")

    keys = [n.key for n in selectors.memory_list(team=team, prefix="conventions/")]
    assert keys == ["conventions/naming", "conventions/tests"]


def test_memory_get_of_a_missing_key_is_not_found(team):
    with pytest.raises(NotFound):
        selectors.memory_get(team=team, key="nothing")


def test_memory_values_are_limited(team):
    with pytest.raises(ServiceError) as refused:
        services.memory_set(team=team, key="big", value="x" * (64 * 1024 + 1))

    assert refused.value.code == "too_large"


def test_viewers_cannot_change_memory(viewer, team):
    services.memory_set(team=team, key="k", value="v")

    with pytest.raises(PermissionDenied):
        services.memory_set_as_human(actor=viewer, key="k", value="changed")
    with pytest.raises(PermissionDenied):
        services.memory_delete(actor=viewer, key="k")
    assert selectors.memory_get(team=team, key="k").value == "v"


def test_memory_delete(member, team):
    services.memory_set(team=team, key="k", value="v")

    services.memory_delete(actor=member, key="k")

    assert not MemoryNote.objects.filter(team=team).exists()
