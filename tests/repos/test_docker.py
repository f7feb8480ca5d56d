"""The real claude CLI in an isolated Docker container (the product's default network), the
scripted model server as its team's provider behind ozweb's gateway: it edits a file in the
run's clone (owned by the container's user) and commits; the change appears."""

from __future__ import annotations

import pytest

from apps.agents.models import Harness
from apps.repos import git
from apps.repos.models import Change
from apps.runs.executor import execute_run
from apps.runs.models import Run, RunStatus
from apps.threads.models import Message, MessageKind
from apps.threads.services import message_post
from tests.factories import AgentFactory
from tests.gateway.conftest import make_provider
from tests.support.model_server import ModelServer, Reply

pytestmark = [
    pytest.mark.docker,
    pytest.mark.harness_cli,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("isolated_docker_sandbox", "live_gateway"),
    pytest.mark.timeout(240),
]


def test_claude_edits_a_file_in_its_branch_and_the_change_appears(owner, thread, repo):
    with ModelServer() as model_server:
        agent = AgentFactory(
            team=thread.team,
            handle="claude",
            harness=Harness.CLAUDE,
            model="claude-fake",
            repo=repo,
            environment={"CLAUDE_CODE_MAX_RETRIES": "1"},
        )
        make_provider(owner, base_url=model_server.url)
        # Its own commit (as the agent, in the container), then an edit it leaves uncommitted.
        model_server.queue(
            Reply.shell(
                "cd /workspace && printf 'a = 2\\n' > calc.py && git commit -qam 'Set a to 2' "
                "&& echo '# more' >> README.md && git branch --show-current"
            )
        )
        message_post(actor=owner, thread=thread, body="@claude set a to 2")
        run = Run.objects.get(agent=agent)
        execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.error, run.stderr_tail)
    assert run.sandbox == "docker"
    result = Message.objects.get(run=run, kind=MessageKind.TOOL_RESULT)
    assert f"ozweb/claude/{run.pk}" in result.body  # the clone was on the run's branch
    change = Change.objects.get(repo=repo)
    assert change.branch == f"ozweb/claude/{run.pk}" and change.agent == agent
    files = {f["path"]: (f["additions"], f["deletions"]) for f in change.versions.get().files}
    assert files == {"calc.py": (1, 1), "README.md": (1, 0)}
    commits = git.commit_subjects(repo, git.rev_parse(repo, "main") or "", change.head)
    assert commits[0][1] == "Set a to 2" and len(commits) == 2
    author = git.run_git(
        ["--git-dir", str(git.bare_path(repo)), "log", "-1", "--format=%an", commits[0][0]]
    ).stdout.decode()
    assert author.strip() == agent.display_name
    assert Message.objects.filter(thread=thread, kind=MessageKind.CHANGE).count() == 1
