"""git's smart HTTP protocol with the real git client against a live ozweb (daphne on the test
database): clone, fetch and push with a token; the refusals git sees."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.repos import git
from apps.repos.services import repo_create
from apps.runs.creation import NewRun, run_create
from apps.runs.tokens import token_issue
from apps.teams.models import Role
from tests.conftest import shared_test_database_url
from tests.e2e.servers import Daphne, base_env
from tests.factories import AgentFactory, MembershipFactory, token_for
from tests.repos.conftest import git_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(scope="module")
def repos_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("git-http") / "repos"


@pytest.fixture(scope="module")
def live(django_db_setup, repos_root) -> Iterator[Daphne]:
    env = base_env(
        DATABASE_URL=shared_test_database_url(),
        OZWEB_VAR_DIR=str(repos_root.parent / "var"),
        OZWEB_REPOS_DIR=str(repos_root),
        OZWEB_RUN_DISPATCH="manual",
    )
    server = Daphne(env).start(repos_root.parent)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def shared_repos_dir(settings, repos_root) -> None:
    settings.OZWEB_REPOS_DIR = str(repos_root)


def url_with(live: Daphne, team, name: str, token: str | None) -> str:
    auth = f"anyone:{token}@" if token else ""
    return f"http://{auth}127.0.0.1:{live.port}/git/{team.slug}/{name}.git"


def test_clone_fetch_and_push_with_an_api_token(live, owner, team, commit_files, tmp_path):
    repo = repo_create(actor=owner, name="calc")
    commit_files(repo, {"calc.py": "a = 1\n"})
    member = MembershipFactory(team=team, role=Role.MEMBER)
    url = url_with(live, team, "calc", token_for(member.user))

    work = tmp_path / "work"
    git_client("clone", "--quiet", url, str(work))
    assert (work / "calc.py").read_text() == "a = 1\n"
    git_client("checkout", "--quiet", "-b", "feature", cwd=work)
    (work / "calc.py").write_text("a = 2\n")
    git_client("commit", "--quiet", "-am", "two", cwd=work)
    pushed = git_client("push", "--quiet", "origin", "feature", cwd=work)
    assert pushed.returncode == 0
    head = git_client("rev-parse", "HEAD", cwd=work).stdout.strip()
    assert git.rev_parse(repo, "feature") == head

    # A run's branch, pushed by the platform, is fetched by another clone.
    other = tmp_path / "other"
    git_client("clone", "--quiet", url, str(other))
    commit_files(repo, {"new.txt": "n\n"}, branch="ozweb/bot/7")
    git_client("fetch", "--quiet", "origin", "ozweb/bot/7", cwd=other)
    shown = git_client("show", "FETCH_HEAD:new.txt", cwd=other).stdout
    assert shown == "n\n"


def test_a_viewer_clones_but_cannot_push(live, owner, team, commit_files, tmp_path):
    repo = repo_create(actor=owner, name="calc")
    commit_files(repo, {"calc.py": "a = 1\n"})
    viewer = MembershipFactory(team=team, role=Role.VIEWER)
    work = tmp_path / "work"
    git_client("clone", "--quiet", url_with(live, team, "calc", token_for(viewer.user)), str(work))
    (work / "calc.py").write_text("a = 3\n")
    git_client("commit", "--quiet", "-am", "three", cwd=work)
    refused = git_client("push", "origin", "HEAD:refs/heads/viewer", cwd=work, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    assert git.rev_parse(repo, "viewer") is None


def test_another_teams_repository_is_a_404_and_no_credentials_a_401(
    live, owner, team, other_team, commit_files, tmp_path
):
    repo = repo_create(actor=owner, name="calc")
    commit_files(repo, {"calc.py": "a = 1\n"})
    outsider = other_team["owner"].user
    refused = git_client(
        "clone", url_with(live, team, "calc", token_for(outsider)), str(tmp_path / "x"), check=False
    )
    assert refused.returncode != 0 and "not found" in refused.stderr.lower()
    missing = git_client(
        "ls-remote", url_with(live, team, "nope", token_for(owner.user)), check=False
    )
    assert missing.returncode != 0 and "not found" in missing.stderr.lower()

    # No credentials: a 401 that makes git ask for them (here it may not: no terminal).
    asked = git_client("ls-remote", url_with(live, team, "calc", None), check=False)
    assert asked.returncode != 0 and "could not read Username" in asked.stderr
    request = urllib.request.Request(
        f"{live.url}/git/{team.slug}/calc.git/info/refs?service=git-upload-pack"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 401
    assert raised.value.headers["WWW-Authenticate"].startswith("Basic ")

    # A wrong token is a 401 too.
    request.add_header("Authorization", "Basic " + base64.b64encode(b"x:not-a-token").decode())
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 401


def test_a_runs_token_clones_and_pushes_its_teams_repositories(
    live, owner, team, thread, commit_files, tmp_path
):
    repo = repo_create(actor=owner, name="calc")
    commit_files(repo, {"calc.py": "a = 1\n"})
    agent = AgentFactory(team=team, handle="coder")
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))
    from apps.runs.models import RunStatus
    from apps.runs.transitions import run_transition

    run_transition(run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.RUNNING)
    token = token_issue(run=run)
    work = tmp_path / "work"
    git_client("clone", "--quiet", url_with(live, team, "calc", token), str(work))
    (work / "b.txt").write_text("b\n")
    git_client("add", ".", cwd=work)
    git_client("commit", "--quiet", "-m", "b", cwd=work)
    git_client("push", "--quiet", "origin", "HEAD:refs/heads/ozweb/coder/x", cwd=work)
    assert git.show_file(repo, "ozweb/coder/x", "b.txt") == "b\n"


def test_oz_reads_changes_and_their_diff(live, owner, team, thread, commit_files):
    import json
    import subprocess

    from tests.agentapi.conftest import OZ
    from tests.repos.conftest import make_change

    repo = repo_create(actor=owner, name="calc")
    commit_files(repo, {"calc.py": "a = 1\n"})
    agent = AgentFactory(team=team, handle="coder")
    change = make_change(repo, agent)
    token = token_issue(run=run_create(NewRun(agent=agent, prompt="go", thread=thread)))

    def oz(*args: str) -> str:
        env = {"PATH": "/usr/bin:/bin", "OZWEB_URL": live.url, "OZWEB_TOKEN": token}
        done = subprocess.run(
            ["python3", str(OZ), *args], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert [c["id"] for c in json.loads(oz("changes", "--mine"))["changes"]] == [change.pk]
    assert "+a = 5" in oz("change", str(change.pk), "--diff")
    assert json.loads(oz("comments", str(change.pk))) == {"comments": []}
