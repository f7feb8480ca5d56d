"""schemathesis (the CLI, as a person or CI would run it) against a live ozweb, bounded.

Every check (`--checks all`); the coverage, fuzzing and stateful phases (`examples` has
nothing to run: the schema has none); derandomized generation, 5 examples an operation, one
worker: the same requests on every run, about a minute for the REST API and half that for the
agent verbs on an idle machine. The configuration, the output and a JUnit report are written
to the report directory (`st replay <id>` with that configuration repeats a failure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import shared_test_database_url
from tests.e2e.servers import ROOT, Daphne, base_env

HOOKS = "tests.support.schemathesis_hooks"
# The live server's throttles: out of the way of a few thousand requests a minute from one
# address (a 429 is a fine answer to schemathesis, but would starve the run of real ones).
UNTHROTTLED = {
    name: "1000000/minute"
    for name in (
        "OZWEB_THROTTLE_USER",
        "OZWEB_THROTTLE_ANON",
        "OZWEB_THROTTLE_RUN",
        "OZWEB_THROTTLE_AUTH_FAILURES",
    )
}


def live_daphne(tmp: Path) -> Daphne:
    """daphne on the shared test database for a schemathesis run: runs it starts stay queued
    (nothing executes them: delegations' children, the API's POST /runs/), seeded running
    runs are not reconciled away, artifact bytes go where seed_team stores them, and the
    throttles do not starve the run."""
    env = base_env(
        DATABASE_URL=shared_test_database_url(),
        OZWEB_VAR_DIR=str(tmp / "var"),
        OZWEB_MEDIA_ROOT=str(tmp / "media"),
        OZWEB_RUN_DISPATCH="manual",
        OZWEB_RUN_STALE_SECONDS="86400",
        **UNTHROTTLED,
    )
    return Daphne(env).start(tmp)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"no TOML for {value!r}")


def toml(config: dict[str, Any], *, name: str = "") -> str:
    """`config` as TOML: scalars, tables (dicts) and arrays of tables (lists of dicts)."""
    scalars, tables, arrays = [], [], []
    for key, value in config.items():
        path = f"{name}.{key}" if name else key
        if isinstance(value, dict):
            tables.append(toml(value, name=path))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:  # its tables inline
                pairs = (f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in item.items())
                arrays.append(f"[[{path}]]\n" + "".join(pairs))
        else:
            scalars.append(f"{json.dumps(key)} = {_toml_value(value)}\n")
    header = [f"[{name}]\n"] if name else []
    return "\n".join(["".join(header + scalars), *tables, *arrays])


# Operations whose valid-looking input can still be refused with a 400 for a rule the schema
# cannot state: one between fields, or one about the team's data. Everywhere else a request
# the schema calls valid must not get a 400.
SCHEMA_CANNOT_SAY = {
    "teams_agents_create": "harness=command needs a command",
    "agents_partial_update": "harness=command needs a command",
    "teams_threads_create": "a channel needs a name, a direct thread an agent",
    "teams_artifacts_create": "a link needs an http(s) url; content within the size limit",
    "threads_messages_create": "@mentions must name an agent or member of the team",
    "runs_messages_create": "@mentions must name an agent or member of the team",
    "agent_post_message": "@mentions must name an agent or member of the team",
    "agent_send_message": "`to` must name agents or members of the team",
    "agent_delegate": "`to` must name another agent of the team",
    "agent_put_artifact": "a link needs an http(s) url; content within the size limit",
    "teams_schedules_create": "a cron croniter reads, an IANA zone, mentions of team members",
    "schedules_partial_update": "a cron croniter reads, an IANA zone, mentions of team members",
    "teams_triggers_create": "a template that parses; a generic trigger needs an agent",
    "triggers_partial_update": "a template that parses; a trigger's kind stays",
    "teams_providers_create": "base_url is an http(s) URL",
    "providers_partial_update": "base_url is an http(s) URL",
    "teams_usage_retrieve": "since and until are ISO 8601 dates or times",
    "changes_comments_create": "the line must be in that version's diff; reply_to on this change",
    "changes_reviews_create": "the version must be one of the change's",
    "artifacts_comments_create": "the version must exist and the line be in it; reply_to on it",
    "artifacts_reviews_create": "the version must exist and be written by an agent",
    "agent_get_review_comments": "exactly one of change_id and artifact",
    "teams_webhooks_create": "a webhook URL must resolve, to public addresses only",
    "webhooks_partial_update": "a webhook URL must resolve, to public addresses only",
}
# Operations that would send traffic off this machine with generated input (a webhook URL is
# resolved in DNS; a repository source is cloned): their own tests cover them on 127.0.0.1.
LEAVES_THE_MACHINE = [
    "teams_webhooks_create",
    "webhooks_partial_update",
    "teams_repos_create",
]
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # the default


def cannot_say() -> list[dict[str, Any]]:
    """Per-operation settings: a 400 is also fine for valid-looking input (SCHEMA_CANNOT_SAY)."""
    allowed = {"expected-statuses": [*POSITIVE_STATUSES, "400"]}
    return [
        {"include-operation-id": operation_id, "checks": {"positive_data_acceptance": allowed}}
        for operation_id in SCHEMA_CANNOT_SAY
    ]


def schemathesis_config(
    *,
    auth: dict[str, Any],
    parameters: dict[str, Any],
    operations: Sequence[dict[str, Any]] = (),
    max_examples: int = 5,
) -> dict[str, Any]:
    return {
        "workers": 1,
        "request-timeout": 20,
        "generation": {
            "deterministic": True,
            "max-examples": max_examples,
            # Text with NUL characters is refused (DRF's CharField); the schema cannot say so.
            "allow-x00": False,
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": False},
            # Methods an operation does not have: one is enough to see the 405 and its Allow.
            "coverage": {
                "unexpected-methods": ["trace"],
                "generate-duplicate-query-parameters": False,
            },
            "stateful": {"max-steps": 6},
        },
        "auth": {"openapi": auth},
        "parameters": parameters,
        "operations": [*operations, *cannot_say()],
    }


def run_schemathesis(
    *,
    url: str,
    config: dict[str, Any],
    report_dir: Path,
    include_tag: str | None = None,
    exclude_tag: str | None = None,
    exclude_operations: Sequence[str] = (),
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """`schemathesis run <url>/api/v1/schema/ --checks all`; its output is in the result."""
    report_dir.mkdir(parents=True, exist_ok=True)
    config_file = report_dir / "schemathesis.toml"
    config_file.write_text(toml(config))
    args = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file),
        "--no-color", "run", f"{url}/api/v1/schema/?format=json", "--checks", "all",
        "--report", "junit", "--report-dir", str(report_dir),
    ]  # fmt: skip
    if include_tag:
        args += ["--include-tag", include_tag]
    if exclude_tag:
        args += ["--exclude-tag", exclude_tag]
    for operation_id in exclude_operations:
        args += ["--exclude-operation-id", operation_id]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(  # in the report directory: what it keeps (.schemathesis/) too
        args, cwd=report_dir, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    (report_dir / "output.txt").write_text(result.stdout + result.stderr)
    return result


@dataclass
class Seeded:
    """A team with data behind every endpoint, and the ids the runs pin path parameters to."""

    owner: Any
    token: str
    team: Any
    agent: Any
    reviewer: Any
    spare_agent: Any  # for DELETE
    thread: Any
    member: Any
    spare_member: Any  # for DELETE
    run: Any  # running, with events
    spare_run: Any  # for cancel
    run_token: str
    held_delivery: Any
    artifact: Any
    invitation_sent: Any  # by the team, to someone else (to revoke)
    invitation_received: Any  # by another team, to the owner (to accept or decline)


def seed_team() -> Seeded:
    """Committed rows (the server shares the database), made the way the product makes them."""
    from apps.artifacts.services import artifact_put, memory_set
    from apps.runs.creation import NewRun, run_create
    from apps.runs.models import RunEvent, RunStatus
    from apps.runs.tokens import token_issue
    from apps.runs.transitions import run_transition
    from apps.teams.models import Role
    from apps.teams.services import team_create
    from apps.threads.models import Thread
    from apps.threads.services import NewMessage, messages_append
    from tests.factories import (
        AgentFactory,
        InvitationFactory,
        MembershipFactory,
        TeamFactory,
        UserFactory,
        token_for,
    )

    user = UserFactory(username="ada")
    team = team_create(name="Schema", owner=user)
    owner = team.memberships.get(user=user)
    agent = AgentFactory(team=team, handle="coder")
    reviewer = AgentFactory(team=team, handle="reviewer")
    spare_agent = AgentFactory(team=team, handle="spare")
    thread = Thread.objects.get(team=team, name="general")
    member = MembershipFactory(team=team, role=Role.MEMBER)
    spare_member = MembershipFactory(team=team, role=Role.VIEWER)
    messages_append(
        thread=thread,
        items=[
            NewMessage(body="Hello @coder", author_user=user, recipients=[agent]),
            NewMessage(body="Second message", author_user=user),
        ],
    )
    [held] = messages_append(
        thread=thread,
        items=[
            NewMessage(
                body="@coder again",
                author_agent=reviewer,
                recipients=[agent],
                hop=team.hop_limit + 1,
            )
        ],
    )
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread, created_by=user))
    run_transition(run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.RUNNING)
    RunEvent.objects.create(run=run, seq=1, kind="assistant_text", data={"text": "On it."})
    spare_run = run_create(NewRun(agent=reviewer, prompt="spare", thread=thread, created_by=user))
    version = artifact_put(team=team, name="notes.md", content="# Notes", author_user=user)
    memory_set(team=team, key="style", value="pytest functions", user=user)
    memory_set(team=team, key="scratch", value="to delete", user=user)
    return Seeded(
        owner=owner,
        token=token_for(user),
        team=team,
        agent=agent,
        reviewer=reviewer,
        spare_agent=spare_agent,
        thread=thread,
        member=member,
        spare_member=spare_member,
        run=run,
        spare_run=spare_run,
        run_token=token_issue(run=run),
        held_delivery=held.deliveries.get(),
        artifact=version.artifact,
        invitation_sent=InvitationFactory(team=team, invitee="grace", invited_by=user),
        invitation_received=InvitationFactory(team=TeamFactory(name="Elsewhere"), invitee="ada"),
    )
