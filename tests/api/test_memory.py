import pytest

from apps.artifacts.models import MemoryNote
from apps.artifacts.services import memory_set
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_put_creates_then_updates_a_note(owner_api, owner, team):
    url = f"/api/v1/teams/{team.pk}/memory/conventions/tests/"

    created = owner_api.put(url, {"value": "pytest functions"}, format="json")
    updated = owner_api.put(url, {"value": "pytest functions, factories"}, format="json")

    assert (created.status_code, updated.status_code) == (200, 200)
    body = updated.json()
    assert (body["key"], body["value"]) == ("conventions/tests", "pytest functions, factories")
    assert (body["updated_by"], body["updated_by_user"]) == (owner.user.username, owner.user.pk)
    assert MemoryNote.objects.filter(team=team).count() == 1


def test_get_a_note_written_by_an_agent(api, team, agent):
    memory_set(team=team, key="deploy:host", value="db1", agent=agent)

    response = api.get(f"/api/v1/teams/{team.pk}/memory/deploy:host/")

    assert response.status_code == 200
    assert (response.json()["value"], response.json()["updated_by"]) == ("db1", "@coder")


def test_a_missing_key_is_404(api, team):
    assert api.get(f"/api/v1/teams/{team.pk}/memory/nothing/").status_code == 404
    assert api.delete(f"/api/v1/teams/{team.pk}/memory/nothing/").status_code == 404


def test_list_with_a_prefix(api, team):
    for key in ["b/one", "a/two", "b/three"]:
        memory_set(team=team, key=key, value="x")

    everything = api.get(f"/api/v1/teams/{team.pk}/memory/").json()
    only_b = api.get(f"/api/v1/teams/{team.pk}/memory/", {"prefix": "b/"}).json()

    assert [n["key"] for n in everything["results"]] == ["a/two", "b/one", "b/three"]
    assert [n["key"] for n in only_b["results"]] == ["b/one", "b/three"]


def test_delete_a_note(api, team):
    memory_set(team=team, key="k", value="v")

    response = api.delete(f"/api/v1/teams/{team.pk}/memory/k/")

    assert response.status_code == 204
    assert not MemoryNote.objects.exists()


def test_a_bad_key_or_value_is_400(api, team):
    bad_key = api.put(f"/api/v1/teams/{team.pk}/memory/!nope/", {"value": "x"}, format="json")
    too_big = api.put(
        f"/api/v1/teams/{team.pk}/memory/k/", {"value": "x" * (64 * 1024 + 1)}, format="json"
    )
    no_value = api.put(f"/api/v1/teams/{team.pk}/memory/k/", {}, format="json")

    assert (bad_key.status_code, bad_key.json()["field"]) == (400, "key")
    assert (too_big.status_code, too_big.json()["code"]) == (400, "too_large")
    assert no_value.status_code == 400


def test_viewers_read_but_cannot_write(viewer, team):
    memory_set(team=team, key="k", value="v")
    client = api_client_for(viewer.user)

    assert client.get(f"/api/v1/teams/{team.pk}/memory/k/").status_code == 200
    assert client.get(f"/api/v1/teams/{team.pk}/memory/").status_code == 200
    put = client.put(f"/api/v1/teams/{team.pk}/memory/k/", {"value": "x"}, format="json")
    delete = client.delete(f"/api/v1/teams/{team.pk}/memory/k/")

    assert (put.status_code, delete.status_code) == (403, 403)
    assert MemoryNote.objects.get(team=team, key="k").value == "v"
