"""Runs on branches, end to end with the example shell agent in the local sandbox: its edits
become a change, a follow-up becomes version 2, merge puts the commits on main."""

from __future__ import annotations

import subprocess

import pytest

from apps.repos import git
from apps.repos.models import Change, ChangeStatus
from apps.repos.workspaces import run_workspace_prepare
from apps.runs.executor import agent_dirs, execute_run
from apps.runs.models import Run, RunStatus
from apps.threads.models import Delivery, Message, MessageKind
from apps.threads.services import message_post
from tests.conftest import api_client_for
from tests.repos.conftest import git_client

pytestmark = [pytest.mark.django_db(transaction=True)]

SHELL_AGENT = "python3 -u $OZWEB_AGENTS_DIR/shell_agent.py"


@pytest.fixture(autouse=True)
def local(settings):
    settings.OZWEB_SANDBOX = "local"


def run_for(owner, thread, agent, body: str) -> Run:
    """Post `body` to the thread for the agent and execute the run it queues."""
    before = set(Run.objects.filter(agent=agent).values_list("pk", flat=True))
    message_post(actor=owner, thread=thread, body=body)
    run = Run.objects.filter(agent=agent).exclude(pk__in=before).get()
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def diff(api, change: Change, query: str = "") -> str:
    response = api.get(f"/api/v1/changes/{change.pk}/diff/{query}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def added_lines(text: str) -> list[str]:
    return [
        line[1:]
        for line in text.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]


def test_a_run_edits_a_file_then_a_follow_up_is_version_2_and_merge_lands_on_main(
    owner, thread, command_agent, repo, tmp_path
):
    agent = command_agent(SHELL_AGENT, handle="shell", repo=repo)
    api = api_client_for(owner.user)

    first = run_for(owner, thread, agent, "@shell `printf 'a = 2\\n' > calc.py`")
    change = Change.objects.get(repo=repo)
    assert change.branch == f"ozweb/shell/{first.pk}"
    assert (change.base, change.status, change.version, change.agent) == ("main", "open", 1, agent)
    body = api.get(f"/api/v1/changes/{change.pk}/").json()
    assert body["files"] == [
        {"path": "calc.py", "status": "modified", "additions": 1, "deletions": 1}
    ]
    assert body["runs"] == [first.pk] and body["thread"] == thread.pk
    assert set(body) == {
        "id", "team", "repo", "title", "branch", "base", "status", "version", "head", "agent",
        "thread", "runs", "files", "created_at", "updated_at",
    }  # fmt: skip
    first_diff = diff(api, change)
    assert "-a = 1" in first_diff and added_lines(first_diff) == ["a = 2"]
    # The leftovers were committed by the platform as the agent.
    author = git_client(
        "--git-dir", str(git.bare_path(repo)), "log", "-1", "--format=%an <%ae>|%s", change.head
    )
    assert author.stdout.strip().startswith(
        f"{agent.display_name} <shell@{repo.team.slug}.agents.ozweb>|"
    )
    card = Message.objects.get(thread=thread, kind=MessageKind.CHANGE)
    assert card.data["change_id"] == change.pk and card.run_id == first.pk
    assert (
        card.data["version"],
        card.data["files"],
        card.data["additions"],
        card.data["deletions"],
    ) == (1, 1, 1, 1)
    # The per-run clone is gone once its work is safe in the repository.
    assert not agent_dirs(first)[0].exists()

    follow_up = run_for(owner, thread, agent, "@shell `printf 'b = 3\\n' >> calc.py`")
    change.refresh_from_db()
    assert change.version == 2 and change.branch == f"ozweb/shell/{first.pk}"
    versions = api.get(f"/api/v1/changes/{change.pk}/versions/").json()
    assert [(v["version"], v["run"]) for v in versions] == [(1, first.pk), (2, follow_up.pk)]
    assert versions[1]["head"] == change.head
    assert added_lines(diff(api, change, "?from=1")) == ["b = 3"]
    assert added_lines(diff(api, change)) == ["a = 2", "b = 3"]
    assert added_lines(diff(api, change, "?version=1")) == ["a = 2"]
    assert api.get(f"/api/v1/changes/{change.pk}/diff/?version=9").status_code == 404
    listed = api.get(f"/api/v1/changes/?team={repo.team_id}&run={follow_up.pk}").json()
    assert [c["id"] for c in listed["results"]] == [change.pk]
    assert Message.objects.filter(thread=thread, kind=MessageKind.CHANGE).count() == 2

    merged = api.post(f"/api/v1/changes/{change.pk}/merge/")
    assert merged.status_code == 200, merged.content
    assert merged.json()["status"] == "merged"
    fresh = tmp_path / "fresh"
    git_client("clone", "--quiet", str(git.bare_path(repo)), str(fresh))
    assert (fresh / "calc.py").read_text() == "a = 2\nb = 3\n"
    log = git_client("log", "--format=%s", cwd=fresh).stdout.splitlines()
    assert log[0].startswith(f"Merge change #{change.pk}")
    assert api.post(f"/api/v1/changes/{change.pk}/merge/").status_code == 409  # merged already

    # Merged: the next run in the thread starts a fresh branch from the new main.
    third = run_for(owner, thread, agent, "@shell `printf 'c = 4\\n' >> calc.py`")
    newest = Change.objects.exclude(pk=change.pk).get(repo=repo)
    assert newest.branch == f"ozweb/shell/{third.pk}"
    assert added_lines(diff(api, newest)) == ["c = 4"]


def test_a_run_that_changes_nothing_opens_no_change(owner, thread, command_agent, repo):
    agent = command_agent(SHELL_AGENT, handle="shell", repo=repo)
    run = run_for(owner, thread, agent, "@shell `cat calc.py`")
    assert not Change.objects.exists()
    assert git.rev_parse(repo, f"refs/heads/ozweb/shell/{run.pk}") is None
    assert not Message.objects.filter(kind=MessageKind.CHANGE).exists()


def test_an_agents_own_commits_are_kept_with_their_messages(owner, thread, command_agent, repo):
    agent = command_agent(SHELL_AGENT, handle="shell", repo=repo)
    command = (
        "echo 'x = 0' > x.py && git add x.py && git commit -qm 'Add x' && echo more >> README.md"
    )
    run_for(owner, thread, agent, f"@shell `{command}`")
    change = Change.objects.get()
    subjects = [s for _, s in git.commit_subjects(repo, git.rev_parse(repo, "main"), change.head)]
    assert subjects[0] == "Add x" and len(subjects) == 2  # then the leftovers' commit
    assert {f["path"] for f in change.versions.get().files} == {"x.py", "README.md"}


def test_a_conflicting_merge_is_409_with_the_paths_and_changes_nothing(
    owner, thread, command_agent, repo, commit_files
):
    agent = command_agent(SHELL_AGENT, handle="shell", repo=repo)
    api = api_client_for(owner.user)
    run_for(owner, thread, agent, "@shell `printf 'a = 2\\n' > calc.py`")
    change = Change.objects.get()
    main_before = commit_files(repo, {"calc.py": "a = 99\n"}, message="meanwhile on main")
    refs_before = git_client("--git-dir", str(git.bare_path(repo)), "show-ref").stdout

    response = api.post(f"/api/v1/changes/{change.pk}/merge/")
    assert response.status_code == 409
    assert response.json()["conflicts"] == ["calc.py"]
    assert git_client("--git-dir", str(git.bare_path(repo)), "show-ref").stdout == refs_before
    assert git.rev_parse(repo, "main") == main_before
    change.refresh_from_db()
    assert change.status == ChangeStatus.OPEN

    # Handing the conflict to the agent: a message addressed to it, on the change's branch.
    sent = api.post(f"/api/v1/changes/{change.pk}/send-conflict/")
    assert sent.status_code == 201, sent.content
    message = Message.objects.get(pk=sent.json()["id"])
    assert message.data == {"change_id": change.pk, "conflicts": ["calc.py"]}
    assert "calc.py" in message.body
    delivery = Delivery.objects.get(message=message)
    assert delivery.agent == agent
    run = Run.objects.get(pk=delivery.run_id)
    workspace = agent_dirs(run)[0]
    run_workspace_prepare(run=run, workspace=workspace, isolated=False)
    branch = subprocess.run(
        ["git", "-C", str(workspace), "branch", "--show-current"], capture_output=True, text=True
    ).stdout.strip()
    assert branch == change.branch


def test_a_git_failure_keeps_the_runs_result_and_says_so(owner, thread, command_agent, repo):
    agent = command_agent(SHELL_AGENT, handle="shell", repo=repo)
    # The agent wrecks the server-side view of its work: the bare repository disappears.
    bare = git.bare_path(repo)
    command = f"echo z > z.txt && mv {bare} {bare}.gone"
    run = run_for(owner, thread, agent, f"@shell `{command}`")
    assert run.status == RunStatus.SUCCEEDED and run.result_text
    error = Message.objects.get(thread=thread, kind=MessageKind.ERROR)
    assert "could not save this run's work" in error.body
    assert agent_dirs(run)[0].exists()  # kept for recovery


def test_an_agent_cannot_pull_another_teams_history_in_through_its_git_dir(
    owner, thread, command_agent, repo, other_team, commit_files
):
    from apps.repos.services import repo_create

    theirs = repo_create(actor=other_team["owner"], name="secret")
    secret = commit_files(theirs, {"plan.txt": "the secret plan\n"}, message="secret")
    agent = command_agent(SHELL_AGENT, handle="shell", repo=repo)
    # Its .git becomes a link to the other team's repository on the host.
    command = f"rm -rf .git && ln -s {git.bare_path(theirs)} .git && echo y > y.txt"
    run_for(owner, thread, agent, f"@shell `{command}`")

    change = Change.objects.get(repo=repo)
    assert [f["path"] for f in change.versions.get().files] == ["y.txt"]
    missing = git_client(
        "--git-dir", str(git.bare_path(repo)), "cat-file", "-e", secret, check=False
    )
    assert missing.returncode != 0
