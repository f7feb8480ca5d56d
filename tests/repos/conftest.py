"""Repositories on disk under the test's tmp dir, and a real git client to poke them."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from apps.repos import git
from apps.repos.models import Change, Repository
from apps.repos.services import change_record_push, repo_create
from tests.runs.conftest import command_agent  # noqa: F401 -- a fixture


@pytest.fixture(autouse=True)
def repo_settings(settings, tmp_path: Path) -> None:
    settings.OZWEB_REPOS_DIR = str(tmp_path / "repos")
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")
    settings.OZWEB_RUN_DISPATCH = "manual"


def git_client(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """The real git client as a person runs it (no config of the machine's user)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": tempfile.gettempdir(),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Tester",
        "GIT_AUTHOR_EMAIL": "tester@example.com",
        "GIT_COMMITTER_NAME": "Tester",
        "GIT_COMMITTER_EMAIL": "tester@example.com",
    }
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done


@pytest.fixture
def commit_files(tmp_path: Path) -> Callable[..., str]:
    """Commit `files` on `branch` of a repository with the git client (through its path);
    returns the new commit."""
    counter = iter(range(1000))

    def commit(
        repo: Repository, files: dict[str, str], *, branch: str = "main", message: str = "edit"
    ) -> str:
        work = tmp_path / f"client-{next(counter)}"
        git_client("clone", "--quiet", str(git.bare_path(repo)), str(work))
        exists = git_client(
            "rev-parse", "--verify", "--quiet", f"origin/{branch}", cwd=work, check=False
        )
        if exists.returncode == 0:
            git_client("checkout", "--quiet", "-B", branch, f"origin/{branch}", cwd=work)
        else:
            git_client("checkout", "--quiet", "-b", branch, cwd=work)
        for path, text in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        git_client("add", "--all", cwd=work)
        git_client("commit", "--quiet", "-m", message, cwd=work)
        git_client("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return git_client("rev-parse", "HEAD", cwd=work).stdout.strip()

    return commit


@pytest.fixture
def repo(owner, commit_files) -> Repository:
    """The team's repository `calc` with one commit on main."""
    repo = repo_create(actor=owner, name="calc")
    commit_files(repo, {"calc.py": "a = 1\n", "README.md": "# calc\n"}, message="initial")
    return repo


def make_change(repo, agent, files=None) -> Change:
    """An open change of `agent` on branch `feature`: `files` committed on top of main."""
    files = files or {"calc.py": "a = 5\n"}
    base = git.rev_parse(repo, "main")
    head = commit_tree(repo, files, branch="feature", parent=base)
    pushed = change_record_push(
        repo=repo, branch="feature", head=head, agent=agent, thread=None, run_id=None, title="Five"
    )
    assert pushed is not None
    return pushed.change


def commit_tree(repo, files, *, branch, parent) -> str:
    """A commit of `files` on top of `parent`, written straight into the bare repository."""
    bare = ["--git-dir", str(git.bare_path(repo))]
    entries = git_client(*bare, "ls-tree", parent).stdout.splitlines()
    for path, text in files.items():
        blob = git.run_git([*bare, "hash-object", "-w", "--stdin"], input=text.encode()).stdout
        entries = [e for e in entries if not e.endswith(f"\t{path}")]
        entries.append(f"100644 blob {blob.decode().strip()}\t{path}")
    tree_entries = "".join(f"{e}\n" for e in entries)
    tree = git.run_git([*bare, "mktree"], input=tree_entries.encode()).stdout.decode().strip()
    commit = git_client(*bare, "commit-tree", tree, "-p", parent, "-m", "feature").stdout.strip()
    git_client(*bare, "update-ref", f"refs/heads/{branch}", commit)
    return commit
