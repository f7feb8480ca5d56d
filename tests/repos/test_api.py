"""The repository and change endpoints: shapes, validation, imports, roles and isolation."""

from __future__ import annotations

import pytest

from apps.repos import git
from apps.repos.models import Change, ChangeVersion, Repository
from tests.conftest import api_client_for
from tests.factories import AgentFactory
from tests.repos.conftest import git_client, make_change

pytestmark = pytest.mark.django_db


def test_create_an_empty_repository(api, team):
    response = api.post(f"/api/v1/teams/{team.pk}/repos/", {"name": "calc"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "default_branch", "clone_url", "created_at"}
    assert body["name"] == "calc" and body["default_branch"] == "main"
    assert body["clone_url"] == f"http://testserver/git/{team.slug}/calc.git"
    repo = Repository.objects.get(pk=body["id"])
    head = git_client("--git-dir", str(git.bare_path(repo)), "symbolic-ref", "HEAD").stdout
    assert head.strip() == "refs/heads/main"
    assert api.get(f"/api/v1/repos/{repo.pk}/").json() == body
    listed = api.get(f"/api/v1/teams/{team.pk}/repos/").json()
    assert [r["id"] for r in listed["results"]] == [repo.pk]


@pytest.mark.parametrize("name", ["", "-x", "a/b", "x.git", "a b", "..", "x" * 101])
def test_a_bad_name_is_a_400(api, team, name):
    response = api.post(f"/api/v1/teams/{team.pk}/repos/", {"name": name}, format="json")
    assert response.status_code == 400
    assert not Repository.objects.exists()


def test_a_taken_name_is_a_400(api, team):
    assert (
        api.post(f"/api/v1/teams/{team.pk}/repos/", {"name": "calc"}, format="json").status_code
        == 201
    )
    again = api.post(f"/api/v1/teams/{team.pk}/repos/", {"name": "calc"}, format="json")
    assert again.status_code == 400 and again.json()["field"] == "name"


def test_an_import_that_fails_is_a_clear_400_and_leaves_nothing(api, team, settings, tmp_path):
    source = "https://127.0.0.1:9/nothing-here.git"
    response = api.post(
        f"/api/v1/teams/{team.pk}/repos/", {"name": "calc", "source": source}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "source" and "Could not import" in response.json()["detail"]
    assert not Repository.objects.exists()
    team_dir = tmp_path / "repos" / str(team.pk)
    assert not team_dir.exists() or not any(team_dir.iterdir())


@pytest.mark.parametrize(
    "source", ["ext::sh -c touch% /tmp/pwned", "http://example.com/x.git", "--upload-pack=x"]
)
def test_only_https_and_ssh_sources(api, team, source):
    response = api.post(
        f"/api/v1/teams/{team.pk}/repos/", {"name": "calc", "source": source}, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == "source"


def test_local_sources_only_when_the_server_allows_them(
    api, team, settings, tmp_path, commit_files, owner
):
    upstream = tmp_path / "upstream"
    git_client("init", "--quiet", "--initial-branch=trunk", str(upstream))
    (upstream / "hello.txt").write_text("hi\n")
    git_client("add", ".", cwd=upstream)
    git_client("commit", "--quiet", "-m", "hello", cwd=upstream)
    data = {"name": "imported", "source": str(upstream)}
    refused = api.post(f"/api/v1/teams/{team.pk}/repos/", data, format="json")
    assert (
        refused.status_code == 400 and "OZWEB_ALLOW_LOCAL_REPO_SOURCES" in refused.json()["detail"]
    )

    settings.OZWEB_ALLOW_LOCAL_REPO_SOURCES = True
    for name, source in (("imported", str(upstream)), ("by-url", f"file://{upstream}")):
        response = api.post(
            f"/api/v1/teams/{team.pk}/repos/", {"name": name, "source": source}, format="json"
        )
        assert response.status_code == 201, response.content
        assert response.json()["default_branch"] == "trunk"
        repo = Repository.objects.get(pk=response.json()["id"])
        assert git.show_file(repo, "trunk", "hello.txt") == "hi\n"


def test_viewers_can_read_but_not_create_merge_or_close(viewer, team, repo, agent):
    api = api_client_for(viewer.user)
    assert api.get(f"/api/v1/teams/{team.pk}/repos/").status_code == 200
    assert (
        api.post(f"/api/v1/teams/{team.pk}/repos/", {"name": "x"}, format="json").status_code == 403
    )
    change = make_change(repo, agent)
    assert api.get(f"/api/v1/changes/{change.pk}/").status_code == 200
    for action in ("merge", "close", "send-conflict"):
        assert api.post(f"/api/v1/changes/{change.pk}/{action}/").status_code == 403


def test_close_and_list_filters(api, team, repo, agent):
    change = make_change(repo, agent)
    assert change.versions.get().files == [
        {"path": "calc.py", "status": "modified", "additions": 1, "deletions": 1}
    ]
    url = f"/api/v1/changes/?team={team.pk}"
    assert [c["id"] for c in api.get(url + "&status=open").json()["results"]] == [change.pk]
    assert api.get(url + "&status=merged").json()["results"] == []
    assert [
        c["id"] for c in api.get(url + f"&agent={agent.pk}&repo={repo.pk}").json()["results"]
    ] == [change.pk]
    assert api.get(url + "&status=bogus").status_code == 400
    assert api.get("/api/v1/changes/").status_code == 400  # team is required
    closed = api.post(f"/api/v1/changes/{change.pk}/close/")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert api.post(f"/api/v1/changes/{change.pk}/close/").status_code == 409
    assert api.post(f"/api/v1/changes/{change.pk}/merge/").status_code == 409
    assert git.rev_parse(repo, "main") == ChangeVersion.objects.get(change=change).base_sha


def test_send_conflict_of_a_clean_change_is_409(api, repo, agent):
    change = make_change(repo, agent)
    assert api.post(f"/api/v1/changes/{change.pk}/send-conflict/").status_code == 409


def test_another_teams_repositories_and_changes_are_404(api, team, other_team, commit_files):
    from apps.repos.services import repo_create

    theirs = repo_create(actor=other_team["owner"], name="secret")
    commit_files(theirs, {"s.txt": "s\n"})
    change = make_change(theirs, other_team["agent"])
    other_id = other_team["team"].pk
    assert api.get(f"/api/v1/teams/{other_id}/repos/").status_code == 404
    assert (
        api.post(f"/api/v1/teams/{other_id}/repos/", {"name": "x"}, format="json").status_code
        == 404
    )
    assert api.get(f"/api/v1/repos/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/v1/changes/?team={other_id}").status_code == 404
    for path in ("", "diff/", "versions/"):
        assert api.get(f"/api/v1/changes/{change.pk}/{path}").status_code == 404
    for action in ("merge", "close", "send-conflict"):
        assert api.post(f"/api/v1/changes/{change.pk}/{action}/").status_code == 404
    # Filters with another team's ids find nothing in one's own team.
    mine = api.get(f"/api/v1/changes/?team={team.pk}&repo={theirs.pk}").json()
    assert mine["results"] == []
    assert Change.objects.get(pk=change.pk).status == "open"


def test_agents_repo_field(api, team, repo, other_team):
    agent = AgentFactory(team=team, handle="coder")
    url = f"/api/v1/agents/{agent.pk}/"
    assert api.get(url).json()["repo"] is None
    response = api.patch(url, {"repo": repo.pk}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["repo"] == repo.pk
    from apps.repos.services import repo_create

    theirs = repo_create(actor=other_team["owner"], name="secret")
    refused = api.patch(url, {"repo": theirs.pk}, format="json")
    assert refused.status_code == 400
    assert api.patch(url, {"repo": None}, format="json").json()["repo"] is None


@pytest.mark.django_db(transaction=True)
def test_opening_and_merging_publish_domain_events(api, repo, agent, monkeypatch):
    from apps.core import registry

    seen: list[tuple[str, int, dict]] = []
    monkeypatch.setattr(registry, "_event_handlers", [lambda *event: seen.append(event)])
    change = make_change(repo, agent)
    assert api.post(f"/api/v1/changes/{change.pk}/merge/").status_code == 200
    assert [(name, team) for name, team, _ in seen] == [
        ("change.opened", repo.team_id),
        ("change.merged", repo.team_id),
    ]
    assert seen[0][2]["change_id"] == change.pk and seen[1][2]["merge_commit"]
