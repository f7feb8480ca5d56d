"""The short preamble every agent's instructions start with: who it is, who is around, and how
to reach them through ozweb."""

from __future__ import annotations

from apps.agents.models import Agent
from apps.runs.models import Run

TOOLS = (
    "whoami, list_team, post_message, send_message, read_inbox, ack, delegate, get_run, "
    "put_artifact, get_artifact, list_artifacts, memory_get, memory_set, memory_list, "
    "list_changes, get_change, get_review_comments"
)


def instructions_for(run: Run, *, via_mcp: bool) -> str:
    agent = run.agent
    teammates = [
        f"@{a.handle} ({a.display_name}, {a.harness})"
        for a in Agent.objects.active()
        .filter(team_id=run.team_id)
        .exclude(pk=agent.pk)
        .order_by("handle")
    ]
    where = f" You are working in {run.thread.label}." if run.thread is not None else ""
    how = (
        f"Use the `ozweb` MCP tools ({TOOLS})"
        if via_mcp
        else f"Use the `oz` command in your shell (`oz help`; verbs: {TOOLS})"
    )
    lines = [
        f"You are @{agent.handle} ({agent.display_name}), an agent in the team "
        f"“{run.team.name}” on ozweb.{where}",
        "Teammates: " + (", ".join(teammates) if teammates else "none yet") + ".",
        f"{how} to talk to teammates and humans, hand work to other agents (delegate), and "
        "keep results: put files, plans, patches and reports in artifacts, shared facts in "
        "team memory. Your final answer is posted to the thread for you.",
    ]
    if agent.repo_id is not None:
        lines.append(
            "Your working directory is a git clone of the team repository on a branch of "
            "your own. Commit your work there (what you leave uncommitted is committed for "
            "you); when you finish, ozweb pushes the branch and opens a change for review. "
            "Review comments come to you as messages (get_change and get_review_comments "
            "show a change's diff and its comments)."
        )
    if agent.instructions.strip():
        lines += ["", agent.instructions.strip()]
    return "\n".join(lines)
