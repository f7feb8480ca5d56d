"""Thin wrappers over the `git` CLI for the team repositories (bare, under OZWEB_REPOS_DIR).

Every call runs `git` as a subprocess (no shell) with a timeout, in an environment that ignores
the server user's git configuration (GIT_CONFIG_NOSYSTEM=1, HOME a neutral dir whose config
says only safe.directory=*, as GIT_CONFIG_GLOBAL), never prompts (GIT_TERMINAL_PROMPT=0),
runs no hooks, and allows only the transports we mean (GIT_ALLOW_PROTOCOL). A failing command
raises GitError with git's stderr in the message.

Reading a repository (what the review side needs):

- ``bare_path(repo) -> Path``: where the repository lives on disk.
- ``rev_parse(repo, rev) -> str | None``: the commit sha of a branch/sha, None when it does not
  exist (e.g. an empty repository's ``main``).
- ``merge_base(repo, a, b) -> str | None``: the best common ancestor of two commits.
- ``diff_text(repo, from_sha, to_sha, context=3) -> str``: the unified diff of the two commits'
  trees, i.e. ``git diff from_sha to_sha`` (two points, NOT ``from...to``): to diff a change
  against its base, pass the version's ``base_sha`` (the merge base stored when it was pushed)
  as ``from_sha``; to compare version M with version N, pass their heads. Rename detection on;
  binary files appear as "Binary files a/x and b/x differ".
- ``file_stats(repo, from_sha, to_sha) -> list[FileStat]``: the same range file by file,
  ``{"path", "status", "additions", "deletions"}`` with status one of "added", "modified",
  "deleted", "renamed", "copied", "type_changed"; a renamed file's path is its new path; a binary
  file counts 0 additions and 0 deletions.
- ``show_file(repo, sha, path) -> str``: a file's text at a commit (undecodable bytes replaced);
  FileNotFoundError when the path is not in that commit.

Writing:

- ``init_bare(repo)``: an empty repository whose HEAD is ``repo.default_branch``.
- ``import_from(repo, source) -> str``: a bare clone of ``source`` (its branches and tags);
  returns the source's default branch. On failure nothing is left on disk.
- ``merge(repo, branch=, into=, author=, message=) -> MergeResult``: a merge commit of ``branch``
  into ``into``, computed without a working tree (``git merge-tree --write-tree``) and moved in
  with a compare-and-swap ref update; on conflicts the repository's refs are untouched and
  ``MergeResult.conflicts`` lists the paths.

Working copies (runs): ``clone_working_copy``, ``snapshot_working_copy`` and ``push_commit``.
A working copy is written by an agent, so the platform never runs git *inside* it (its
.git/config and hooks are the agent's): the snapshot reads the agent's commits with a fetch and
stages its files through a platform-owned git dir.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict

from django.conf import settings

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
IMPORT_TIMEOUT = 600.0
# A sha of the empty tree, for diffs of a root commit.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class GitError(Exception):
    """A git command failed (or timed out); the message carries git's own words."""

    def __init__(self, message: str, *, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


class RepoRef(Protocol):
    """What these helpers read of a Repository."""

    pk: int
    team_id: int
    default_branch: str


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


class FileStat(TypedDict):
    path: str
    status: str
    additions: int
    deletions: int


@dataclass(frozen=True)
class MergeResult:
    sha: str = ""  # the merge commit, when merged
    conflicts: list[str] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        return bool(self.sha) and not self.conflicts


def _neutral_home() -> Path:
    home = Path(tempfile.gettempdir()) / f"ozweb-git-home-{os.geteuid()}"
    home.mkdir(mode=0o700, exist_ok=True)
    return home


def _global_config() -> str:
    """Our own "global" config: working copies belong to the sandbox's uid, and git (its
    upload-pack too, which ignores -c) refuses another user's repository without this."""
    path = _neutral_home() / "gitconfig"
    if not path.exists():
        path.write_text("[safe]\n\tdirectory = *\n")
    return str(path)


def git_env(*, allow_local: bool = True, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git call gets: none of the server user's config, no prompts."""
    protocols = "https:ssh:file" if allow_local else "https:ssh"
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(_neutral_home()),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": _global_config(),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": protocols,
        # An ssh source must not wait for a password or a host-key question.
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "LC_ALL": "C",
    }
    if extra:
        env.update(extra)
    return env


# Never a hook: the platform's git calls run no repository's code.
_BASE_CONFIG = ["-c", "core.hooksPath=/dev/null"]


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | str | None = None,
    input: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run `git <args>`; raise GitError on a timeout or an exit code not in ok_codes."""
    argv = ["git", *_BASE_CONFIG, *args]
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else git_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} took longer than {timeout:.0f} s") from exc
    except OSError as exc:  # no git binary, or cwd gone
        raise GitError(f"could not run git: {exc}") from exc
    if done.returncode not in ok_codes:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        raise GitError(
            f"git {args[0]} failed: {stderr or f'exit {done.returncode}'}", stderr=stderr
        )
    return done


def _bare(repo: RepoRef) -> list[str]:
    return ["--git-dir", str(bare_path(repo))]


def _out(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode("utf-8", "replace")


# -- the bare repository -------------------------------------------------------------------


def bare_path(repo: RepoRef) -> Path:
    return Path(settings.OZWEB_REPOS_DIR) / str(repo.team_id) / f"{repo.pk}.git"


def init_bare(repo: RepoRef) -> Path:
    path = bare_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["init", "--quiet", "--bare", f"--initial-branch={repo.default_branch}", str(path)])
    _configure_bare(path)
    return path


def _configure_bare(path: Path) -> None:
    # A push over HTTP never rewrites history the server holds (no force-push); the
    # platform's own moves are compare-and-swap ref updates.
    for key, value in (
        ("receive.denyNonFastForwards", "true"),
        ("receive.denyDeletes", "false"),
        ("http.receivepack", "true"),
        ("uploadpack.allowAnySHA1InWant", "true"),
    ):
        run_git(["--git-dir", str(path), "config", key, value])


def import_from(repo: RepoRef, source: str, *, allow_local: bool = False) -> str:
    """Bare-clone `source` into the repository's place; return its default branch name.
    Nothing is left on disk when it fails."""
    path = bare_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise GitError(f"{path} already exists")
    try:
        run_git(
            ["clone", "--quiet", "--bare", "--", source, str(path)],
            timeout=IMPORT_TIMEOUT,
            env=git_env(allow_local=allow_local),
        )
        _configure_bare(path)
        head = run_git(
            ["--git-dir", str(path), "symbolic-ref", "--quiet", "--short", "HEAD"], ok_codes=(0, 1)
        )
        return _out(head).strip() or repo.default_branch
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def delete_bare(repo: RepoRef) -> None:
    shutil.rmtree(bare_path(repo), ignore_errors=True)


def rev_parse(repo: RepoRef, rev: str) -> str | None:
    done = run_git(
        [*_bare(repo), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
        ok_codes=(0, 1, 128),
    )
    return _out(done).strip() or None if done.returncode == 0 else None


def merge_base(repo: RepoRef, a: str, b: str) -> str | None:
    done = run_git([*_bare(repo), "merge-base", a, b], ok_codes=(0, 1))
    return _out(done).strip() or None if done.returncode == 0 else None


def is_ancestor(repo: RepoRef, ancestor: str, descendant: str) -> bool:
    done = run_git(
        [*_bare(repo), "merge-base", "--is-ancestor", ancestor, descendant], ok_codes=(0, 1)
    )
    return done.returncode == 0


_DIFF_OPTIONS = ["--no-color", "--no-ext-diff", "--no-textconv", "-M"]


def diff_text(repo: RepoRef, from_sha: str, to_sha: str, *, context: int = 3) -> str:
    done = run_git([*_bare(repo), "diff", *_DIFF_OPTIONS, f"-U{context}", from_sha, to_sha, "--"])
    return _out(done)


_STATUS = {
    "A": "added",
    "M": "modified",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "T": "type_changed",
}


def file_stats(repo: RepoRef, from_sha: str, to_sha: str) -> list[FileStat]:
    common = [*_bare(repo), "diff", *_DIFF_OPTIONS, "-z", from_sha, to_sha]
    names = _out(run_git([*common, "--name-status", "--"])).split("\0")
    statuses: dict[str, str] = {}
    order: list[str] = []
    i = 0
    while i < len(names) and names[i]:
        code = names[i][0]
        if code in "RC":  # score, old path, new path
            path, i = names[i + 2], i + 3
        else:
            path, i = names[i + 1], i + 2
        statuses[path] = _STATUS.get(code, "modified")
        order.append(path)
    counts: dict[str, tuple[int, int]] = {}
    fields = _out(run_git([*common, "--numstat", "--"])).split("\0")
    i = 0
    while i < len(fields) and fields[i]:
        added, deleted, path = fields[i].split("\t", 2)
        i += 1
        if not path:  # a rename: the old and new paths follow
            path, i = fields[i + 1], i + 2
        # "-" for a binary file.
        counts[path] = (
            int(added) if added.isdigit() else 0,
            int(deleted) if deleted.isdigit() else 0,
        )
    return [
        FileStat(
            path=path,
            status=statuses[path],
            additions=counts.get(path, (0, 0))[0],
            deletions=counts.get(path, (0, 0))[1],
        )
        for path in order
    ]


def show_file(repo: RepoRef, sha: str, path: str) -> str:
    done = run_git([*_bare(repo), "show", "--no-textconv", f"{sha}:{path}"], ok_codes=(0, 128))
    if done.returncode != 0:
        raise FileNotFoundError(f"{path} is not in {sha[:12]}")
    return _out(done)


def commit_subjects(repo: RepoRef, from_sha: str, to_sha: str) -> list[tuple[str, str]]:
    """(sha, subject) of the commits in to_sha that from_sha lacks, oldest first."""
    done = run_git(
        [*_bare(repo), "log", "--reverse", "--format=%H%x09%s", f"{from_sha}..{to_sha}", "--"]
    )
    return [tuple(line.split("\t", 1)) for line in _out(done).splitlines() if "\t" in line]  # type: ignore[misc]


def _identity_env(author: Identity, committer: Identity | None = None) -> dict[str, str]:
    committer = committer or author
    return git_env(
        extra={
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
    )


def _merge_tree(repo: RepoRef, ours: str, theirs: str) -> tuple[str, list[str]]:
    """The merged tree of two commits (written as objects, no ref moved) and the paths that
    conflict (the tree is then not usable)."""
    done = run_git(
        [*_bare(repo), "merge-tree", "--write-tree", "--name-only", "-z", "--no-messages"]
        + [ours, theirs],
        ok_codes=(0, 1),
    )
    parts = _out(done).split("\0")
    if done.returncode == 1:
        return "", sorted({p for p in parts[1:] if p}) or ["(unknown)"]
    return parts[0].strip(), []


def merge_conflicts(repo: RepoRef, *, branch: str, into: str) -> list[str]:
    """The paths that would conflict if `branch` were merged into `into` now (empty: it
    merges cleanly, or `into` does not exist yet). Changes nothing."""
    theirs = rev_parse(repo, f"refs/heads/{branch}")
    ours = rev_parse(repo, f"refs/heads/{into}")
    if theirs is None:
        raise GitError(f"branch {branch!r} does not exist")
    if ours is None:
        return []
    return _merge_tree(repo, ours, theirs)[1]


def merge(
    repo: RepoRef, *, branch: str, into: str, author: Identity, message: str = ""
) -> MergeResult:
    """Merge `branch` into `into` with a merge commit (always, as a review tool's merge
    button does). A branch or base that does not exist is a GitError."""
    git_dir = _bare(repo)
    theirs = rev_parse(repo, f"refs/heads/{branch}")
    ours = rev_parse(repo, f"refs/heads/{into}")
    if theirs is None:
        raise GitError(f"branch {branch!r} does not exist")
    if ours is None:  # an empty repository: the branch becomes its base
        run_git([*git_dir, "update-ref", f"refs/heads/{into}", theirs, "0" * 40])
        return MergeResult(sha=theirs)
    tree, conflicts = _merge_tree(repo, ours, theirs)
    if conflicts:
        return MergeResult(conflicts=conflicts)
    text = message or f"Merge branch '{branch}' into {into}"
    commit = run_git(
        [*git_dir, "commit-tree", tree, "-p", ours, "-p", theirs, "-F", "-"],
        input=text.encode(),
        env=_identity_env(author),
    )
    sha = _out(commit).strip()
    # Compare-and-swap: a push to the base meanwhile makes this fail instead of losing it.
    run_git([*git_dir, "update-ref", f"refs/heads/{into}", sha, ours])
    return MergeResult(sha=sha)


# -- working copies (a run's /workspace) ---------------------------------------------------


def clone_working_copy(
    repo: RepoRef,
    dest: Path,
    *,
    branch: str,
    start_point: str | None,
    author: Identity,
    remote_url: str = "",
) -> None:
    """Clone the repository into `dest` (which must not exist or be empty) with `branch`
    checked out: the existing branch, or a new one at `start_point` (None: an unborn branch
    in an empty repository). Commits made there carry `author`."""
    env = git_env()
    run_git(
        ["clone", "--quiet", "--no-hardlinks", "--no-checkout", str(bare_path(repo)), str(dest)],
        env=env,
    )
    wc = ["-C", str(dest)]
    if rev_parse(repo, f"refs/heads/{branch}") is not None:
        run_git([*wc, "checkout", "--quiet", "-B", branch, f"origin/{branch}"], env=env)
    elif start_point is not None:
        run_git([*wc, "checkout", "--quiet", "--no-track", "-b", branch, start_point], env=env)
    else:
        run_git([*wc, "symbolic-ref", "HEAD", f"refs/heads/{branch}"], env=env)
    settings_ = [("user.name", author.name), ("user.email", author.email)]
    if remote_url:
        # Inside the sandbox the bare path means nothing: origin is ozweb's git over HTTP,
        # with the run's token (in $OZWEB_TOKEN) as the password.
        settings_ += [
            ("remote.origin.url", remote_url),
            ("credential.helper", '!f() { echo username=run; echo "password=$OZWEB_TOKEN"; }; f'),
        ]
    for key, value in settings_:
        run_git([*wc, "config", key, value], env=env)


def snapshot_working_copy(
    repo: RepoRef, workdir: Path, *, start: str | None, author: Identity, message: str
) -> str | None:
    """The commit that holds everything in `workdir`: its HEAD when the agent committed it
    all, else a new commit on top of its HEAD (or of `start` if its HEAD can not be read) with
    the leftovers. None when there is nothing at all (an empty repository left empty).

    The objects end up in the bare repository; no ref is moved (see push_commit)."""
    bare = bare_path(repo)
    with tempfile.TemporaryDirectory(prefix="ozweb-snapshot-") as tmp:
        shadow = Path(tmp) / "git"
        env = git_env(extra={"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        run_git(["init", "--quiet", "--bare", str(shadow)], env=env)
        gd = ["--git-dir", str(shadow)]
        # Borrow the server's objects instead of copying them.
        (shadow / "objects" / "info" / "alternates").write_text(str(bare / "objects") + "\n")
        head = start
        refusal = _untrusted_git_dir(workdir)
        fetched = (
            run_git(
                [*gd, "fetch", "--quiet", "--no-tags", str(workdir), "HEAD"],
                env=env,
                ok_codes=(0, 1, 128),
            )
            if refusal is None
            else None
        )
        if fetched is not None and fetched.returncode == 0:
            head = _out(run_git([*gd, "rev-parse", "FETCH_HEAD"], env=env)).strip()
        else:  # an unborn branch, or a .git the agent broke: its files still count
            why = refusal or (fetched.stderr if fetched else b"").decode("utf-8", "replace")
            logger.warning("not reading the commits in %s: %s", workdir, why.strip()[-500:])
        work = [*gd, "--work-tree", str(workdir)]
        if head:
            run_git([*work, "read-tree", head], env=env)
        run_git([*work, "add", "--all", "--", "."], env=env)
        tree = _out(run_git([*gd, "write-tree"], env=env)).strip()
        if head and tree == _out(run_git([*gd, "rev-parse", f"{head}^{{tree}}"], env=env)).strip():
            new = head
        elif not head and tree == EMPTY_TREE:
            return None
        else:
            parents = ["-p", head] if head else []
            new = _out(
                run_git(
                    [*gd, "commit-tree", tree, *parents, "-F", "-"],
                    input=message.encode(),
                    env={**env, **_identity_env(author)},
                )
            ).strip()
        # Into the server's repository under a scratch ref; push_commit moves the branch.
        run_git(
            [*gd, "push", "--quiet", "--no-verify", str(bare), f"{new}:refs/ozweb/snapshots/{new}"],
            env=env,
        )
        run_git(["--git-dir", str(bare), "update-ref", "-d", f"refs/ozweb/snapshots/{new}"])
        return new


def _untrusted_git_dir(workdir: Path) -> str | None:
    """Why the agent's .git must not be read (None: it may be). The agent wrote it and it is
    read on the host: anything that leads git outside the working copy (a symlink, a gitfile,
    alternates, a common dir) could read another team's repository into this one."""
    git_dir = workdir / ".git"
    if git_dir.is_symlink() or not git_dir.is_dir():
        return ".git is not a directory"
    for name in ("commondir", "objects/info/alternates"):
        if os.path.lexists(git_dir / name):
            return f".git/{name} exists"
    for dirpath, dirnames, filenames in os.walk(git_dir):
        for entry in (*dirnames, *filenames):
            if os.path.islink(os.path.join(dirpath, entry)):
                return f"{os.path.join(dirpath, entry)} is a symlink"
    return None


def push_commit(repo: RepoRef, *, sha: str, branch: str, expected: str | None) -> None:
    """Point `branch` at `sha` if it still points at `expected` (None: the branch must not
    exist yet), so work pushed meanwhile is never overwritten."""
    old = expected or "0" * 40
    run_git([*_bare(repo), "update-ref", f"refs/heads/{branch}", sha, old])
