"""A run's working copy: cloned before the run on its branch, saved and reviewed after it.

The executor calls two functions:

- ``run_workspace_prepare(run=, workspace=, isolated=, ozweb_url=)`` before the sandbox
  starts: for an agent with a repository, a fresh clone at `workspace` (the dir mounted at
  /workspace, owned by the container's user) on the run's branch: ``ozweb/<handle>/<run id>``
  cut from the default branch, or the branch of the change the run continues (a message it was
  started for carries ``data["change_id"]``, or it runs in the thread of the agent's open
  change). git's user is the agent; ``origin`` is ozweb's git over HTTP (at `ozweb_url`, as the
  sandbox reaches ozweb) with the run's token.
- ``run_workspace_finish(run=, workspace=)`` after the process ended and its output is stored,
  before the run's final status: commits what the agent left (author: the agent; message: the
  first line of the run's result), moves the branch in the team repository, and when the
  branch differs from its base opens a change or adds a version (services.change_record_push,
  which posts the card). It never raises: a git failure becomes an error message in the
  run's thread (and a warning on the run) and the working copy is kept for recovery.

What prepare learned (repository, branch, the branch's commit at the start) is kept in a
file next to the workspace, outside the agent's reach, so a worker that takes the run over
finishes it the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from apps.agents.models import Agent
from apps.repos import git
from apps.repos.models import Change, ChangeStatus, Repository
from apps.repos.review_page import prewarm
from apps.repos.selectors import change_open_for_thread, clone_url
from apps.repos.services import agent_identity, change_record_push
from apps.threads.models import Message, MessageKind, Thread
from apps.threads.services import NewMessage, messages_append
from harness_image.constants import AGENT_GID, AGENT_UID

logger = logging.getLogger(__name__)

STATE_FILE = "ozweb-workspace.json"


class RunRef(Protocol):
    """What this module reads of a run (apps.runs.models.Run)."""

    pk: int
    team_id: int
    agent: Agent
    thread_id: int | None
    prompt: str
    result_text: str
    status: str


@dataclass(frozen=True)
class WorkspaceState:
    repo_id: int
    branch: str
    start: str | None  # the branch's commit when the run began (None: a new, unborn branch)
    base: str | None  # the default branch's commit then
    change_id: int | None  # the change the run continues


def run_branch(agent: Agent, run_id: int) -> str:
    return f"ozweb/{agent.handle}/{run_id}"


def _state_path(workspace: Path) -> Path:
    return workspace.parent / STATE_FILE


def continued_change(run: RunRef, repo: Repository) -> Change | None:
    """The open change of `repo` this run works on, if it continues one: a message it was
    started for names the change (a review, a conflict), or it runs in the thread of the
    agent's open change (a follow-up)."""
    datas = Message.objects.filter(deliveries__run_id=run.pk).values_list("data", flat=True)
    for data in datas:
        change_id = data.get("change_id") if isinstance(data, dict) else None
        if isinstance(change_id, int):
            change = Change.objects.filter(
                pk=change_id, repo=repo, team_id=run.team_id, status=ChangeStatus.OPEN
            ).first()
            if change is not None:
                return change
    if run.thread_id is not None:
        return change_open_for_thread(
            agent_id=run.agent.pk, repo_id=repo.pk, thread_id=run.thread_id
        )
    return None


def run_workspace_prepare(
    *, run: RunRef, workspace: Path, isolated: bool, ozweb_url: str | None = None
) -> None:
    """Clone the agent's repository into `workspace` on the run's branch (nothing for an
    agent without a repository). Raises git.GitError: the run can not start without it."""
    agent = run.agent
    if agent.repo_id is None:
        return
    repo = Repository.objects.select_related("team").get(pk=agent.repo_id)
    change = continued_change(run, repo)
    branch = change.branch if change is not None else run_branch(agent, run.pk)
    base = git.rev_parse(repo, f"refs/heads/{repo.default_branch}")
    start = git.rev_parse(repo, f"refs/heads/{branch}")
    # A fresh copy every time: a start that is retried must not see the last attempt's files.
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.parent.mkdir(parents=True, exist_ok=True)
    git.clone_working_copy(
        repo,
        workspace,
        branch=branch,
        start_point=base,
        author=agent_identity(agent),
        remote_url=clone_url(repo, base_url=ozweb_url),
    )
    state = WorkspaceState(
        repo_id=repo.pk,
        branch=branch,
        start=start,
        base=base,
        change_id=change.pk if change is not None else None,
    )
    _state_path(workspace).write_text(json.dumps(asdict(state)))
    if isolated and os.geteuid() == 0:
        _chown_tree(workspace)  # the container's user must own its working copy


def _chown_tree(root: Path) -> None:
    os.chown(root, AGENT_UID, AGENT_GID)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), AGENT_UID, AGENT_GID)


def _load_state(workspace: Path) -> WorkspaceState | None:
    try:
        return WorkspaceState(**json.loads(_state_path(workspace).read_text()))
    except FileNotFoundError:
        return None


def _commit_message(run: RunRef) -> str:
    for text in (run.result_text, run.prompt):
        first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
        if first:
            return first[:200]
    return f"Work of run {run.pk}"


def run_workspace_finish(*, run: RunRef, workspace: Path) -> None:
    """Save the run's work (see the module docstring). Never raises."""
    state = _load_state(workspace)
    if state is None:
        return  # not a repository run (or prepare never got that far)
    try:
        _finish(run, workspace, state)
    except Exception as exc:
        logger.exception("run %s: saving its work to the repository failed", run.pk)
        _report_failure(run, workspace, exc)


def _finish(run: RunRef, workspace: Path, state: WorkspaceState) -> None:
    repo = Repository.objects.select_related("team").get(pk=state.repo_id)
    agent = run.agent
    message = _commit_message(run)
    head = git.snapshot_working_copy(
        repo,
        workspace,
        start=state.start or state.base,
        author=agent_identity(agent),
        message=message,
    )
    if head is None or (state.start is None and head == state.base):
        shutil.rmtree(workspace.parent, ignore_errors=True)
        return  # nothing done: no branch to keep
    current = git.rev_parse(repo, f"refs/heads/{state.branch}")
    if current is not None and current != head and not git.is_ancestor(repo, current, head):
        # Someone pushed to the branch meanwhile and the run did not build on it: keep both.
        raise git.GitError(
            f"the branch {state.branch} moved to {current[:12]} during the run and the run's "
            f"commit {head[:12]} does not contain it"
        )
    if current != head:
        git.push_commit(repo, sha=head, branch=state.branch, expected=current)
    thread = Thread.objects.filter(pk=run.thread_id).first() if run.thread_id else None
    pushed = change_record_push(
        repo=repo,
        branch=state.branch,
        head=head,
        agent=agent,
        thread=thread,
        run_id=run.pk,
        title=message,
    )
    if pushed is not None:
        prewarm(change_id=pushed.change.pk, version_id=pushed.version.pk)
    shutil.rmtree(workspace.parent, ignore_errors=True)


def _report_failure(run: RunRef, workspace: Path, exc: Exception) -> None:
    text = (
        f"ozweb could not save this run's work to the repository: {exc}. "
        f"The run's working copy is kept on the server at {workspace}."
    )
    try:
        thread = Thread.objects.filter(pk=run.thread_id).first() if run.thread_id else None
        if thread is not None:
            data: dict[str, Any] = {"run_id": run.pk, "error": str(exc)[:1000]}
            messages_append(
                thread=thread,
                items=[
                    NewMessage(body=text[:4000], kind=MessageKind.ERROR, run_id=run.pk, data=data)
                ],
            )
    except Exception:
        logger.exception("run %s: could not report the failure", run.pk)
