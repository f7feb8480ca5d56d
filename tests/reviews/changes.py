"""A change to review, built from real git commits in a real bare repository (apps.repos.git
and the git CLI), with its Change and ChangeVersion rows written directly: the review half is
tested without a run producing the change."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from apps.repos import git
from apps.repos.models import Change, ChangeVersion, Repository


@dataclass
class Workdir:
    path: Path

    def git(self, *args: str) -> str:
        env = git.git_env(
            extra={
                "GIT_AUTHOR_NAME": "Coder",
                "GIT_AUTHOR_EMAIL": "coder@agents.ozweb",
                "GIT_COMMITTER_NAME": "Coder",
                "GIT_COMMITTER_EMAIL": "coder@agents.ozweb",
            }
        )
        done = subprocess.run(
            ["git", "-C", str(self.path), *args], capture_output=True, env=env, check=True
        )
        return done.stdout.decode().strip()

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, files: dict[str, str], message: str) -> str:
        self.write(files)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")


def repository(team, tmp_path: Path, *, name: str = "calc") -> tuple[Repository, Workdir]:
    repo = Repository.objects.create(team=team, name=name)
    git.init_bare(repo)
    work = Workdir(tmp_path / f"work-{repo.pk}")
    subprocess.run(
        ["git", "clone", "--quiet", str(git.bare_path(repo)), str(work.path)],
        check=True, capture_output=True, env=git.git_env(),
    )  # fmt: skip
    work.git("checkout", "--quiet", "-B", "main")
    return repo, work


def add_version(change: Change, work: Workdir, files: dict[str, str], message: str, *, run=None):
    head = work.commit(files, message)
    work.git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{change.branch}")
    base_sha = git.merge_base(change.repo, f"refs/heads/{change.base}", head) or ""
    number = change.versions.count() + 1
    version = ChangeVersion.objects.create(
        change=change, number=number, head=head, base_sha=base_sha, run=run,
        files=git.file_stats(change.repo, base_sha, head),
    )  # fmt: skip
    Change.objects.filter(pk=change.pk).update(version=number, head=head)
    change.version, change.head = number, head
    return version


def open_change(
    *, team, agent, tmp_path: Path, thread=None, base_files: dict[str, str], files: dict[str, str],
    title: str = "Fix add",
) -> tuple[Change, Workdir]:  # fmt: skip
    """A repository whose main holds `base_files`, and an open change (v1) that writes
    `files` on branch ozweb/<agent>/1."""
    repo, work = repository(team, tmp_path)
    work.commit(base_files, "base")
    work.git("push", "--quiet", "origin", "HEAD:refs/heads/main")
    branch = f"ozweb/{agent.handle}/1"
    work.git("checkout", "--quiet", "-b", branch)
    change = Change.objects.create(
        team=team, repo=repo, title=title, branch=branch, base="main", agent=agent,
        thread=thread, head="",
    )  # fmt: skip
    add_version(change, work, files, title)
    return change, work


CALC = "".join(f"def f{n}(a, b):\n    return a + b\n\n\n" for n in range(1, 11))
