"""The collaboration demo in Docker sandboxes: `manage.py run_scenario` on a fresh embedded
install, offline (it starts the server itself), and with the real Claude Code and Codex CLIs
against the scripted model server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tests.support.model_server as model_server_module
from apps.runs.scenario import MODEL_INSTRUCTIONS
from tests.e2e.servers import ROOT, Daphne, free_port, manage
from tests.harnesses.mcp_support import with_codex_namespaces
from tests.support.model_server import (
    ANTHROPIC,
    RESPONSES,
    ModelServer,
    Reply,
    newest_input_is_tool_result,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def in_docker(embedded_env: dict[str, str], image: str, port: int) -> dict[str, str]:
    """The install's environment for a server on `port` whose runs use Docker sandboxes as the
    product makes them (`--network none`: they reach ozweb alone, through the relay, and the
    model server only as a provider behind ozweb's gateway)."""
    return dict(
        embedded_env,
        OZWEB_SANDBOX="docker",
        OZWEB_HARNESS_IMAGE=image,
        OZWEB_AGENT_API_URL=f"http://127.0.0.1:{port}",
    )


def test_the_lead_delegates_waits_for_both_workers_and_writes_a_summary(
    embedded_env: dict[str, str], harness_image: str
) -> None:
    env = in_docker(embedded_env, harness_image, free_port())
    manage(env, "seed_demo")

    result = subprocess.run(
        [sys.executable, "manage.py", "run_scenario", "--timeout", "180"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Done. Artifacts: summary.md, worker-a-inventory.md, worker-b-review.md" in output
    lines = [line for line in result.stdout.splitlines() if line.startswith("  [")]
    text = "\n".join(lines)
    assert "Delegated to @worker-a" in text and "Delegated to @worker-b" in text
    assert "Result of run" in text and "from @worker-a (succeeded)" in text
    assert "from @worker-b (succeeded)" in text
    assert text.index("from @worker-b (succeeded)") < text.index("summary.md")


# -- the same scenario with models: a Claude Code lead and Codex workers --------------------------


def lead_and_workers(protocol: str, body: dict[str, Any]) -> Reply | None:
    """The models' side of the demo, decided from what each request carries (the lead and the
    workers run at once, so a queue of replies would be a race): the lead (Claude Code)
    delegates to both workers, then, once both results have come back, puts the summary; each
    worker (Codex) puts its report."""
    history = json.dumps(body.get("messages") or body.get("input") or [], ensure_ascii=False)
    if protocol == ANTHROPIC:
        delegated = history.count('"name": "mcp__ozweb__delegate"')
        if newest_input_is_tool_result(protocol, body):
            if delegated == 1:
                return Reply.tool_call(
                    "mcp__ozweb__delegate",
                    {"to": "worker-b", "goal": "Review the example agents' code."},
                )
            return Reply.final_text("Done for now; the workers report back to me.")
        if delegated == 0:
            return Reply.tool_call(
                "mcp__ozweb__delegate",
                {"to": "worker-a", "goal": "List the example agents' files."},
            )
        if history.count("Result of run") >= 2 and "mcp__ozweb__put_artifact" not in history:
            return Reply.tool_call(
                "mcp__ozweb__put_artifact",
                {"name": "summary.md", "kind": "report", "content": "# Summary\n\nBoth done."},
            )
        return Reply.final_text("Waiting for the other worker.")
    if protocol == RESPONSES:
        if newest_input_is_tool_result(protocol, body):
            return Reply.final_text("My report is stored.")
        handle = "worker-a" if "You are @worker-a" in json.dumps(body) else "worker-b"
        return Reply.tool_call(
            "mcp__ozweb__put_artifact",
            {"name": f"{handle}-report.md", "kind": "report", "content": f"# {handle}\n\nok"},
        )
    return None


def test_with_models_a_claude_lead_and_codex_workers_do_the_same(
    embedded_env: dict[str, str], harness_image: str, monkeypatch
) -> None:
    """`run_scenario --harness models` with the real `claude` and `codex` CLIs in containers,
    against the scripted model server. The agents exist already (pointed at that server), so
    the demo uses them as they are."""
    monkeypatch.setattr(
        model_server_module,
        "responses_events",
        with_codex_namespaces(model_server_module.responses_events),
    )
    port = free_port()
    env = in_docker(embedded_env, harness_image, port)
    token = manage(env, "create_api_user", "lead-owner", "--team", "Models").split()[-1]
    ozweb = Daphne(env, port=port).start(Path(embedded_env["OZWEB_VAR_DIR"]))
    try:
        with ModelServer() as models:
            team = ozweb.get_json("/api/v1/teams/", token=token)["results"][0]["id"]
            for kind, base_url in (("anthropic", models.url), ("openai", models.openai_url)):
                provider = {"name": kind, "kind": kind, "base_url": base_url,
                            "api_key": f"sk-{kind}-fake"}  # fmt: skip
                ozweb.post_json(f"/api/v1/teams/{team}/providers/", provider, token)
            for handle in ("lead", "worker-a", "worker-b"):
                ozweb.post_json(f"/api/v1/teams/{team}/agents/", agent(handle, models), token)
            models.policy = lead_and_workers

            result = subprocess.run(
                [sys.executable, "manage.py", "run_scenario", "--team", "Models", "--user",
                 "lead-owner", "--harness", "models", "--timeout", "240"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
            )  # fmt: skip

            output = result.stdout + result.stderr
            assert result.returncode == 0, output[-4000:] + ozweb.log()
            assert "Artifacts: summary.md, worker-a-report.md, worker-b-report.md" in output, output
            lines = "\n".join(line for line in result.stdout.splitlines() if line.startswith("  ["))
            assert "Delegated to @worker-a" in lines and "Delegated to @worker-b" in lines
            assert "from @worker-a (succeeded)" in lines and "from @worker-b (succeeded)" in lines
            # The results woke the lead, whose Claude Code session saw both.
            lead_saw = [r.text().count("Result of run") for r in models.main_requests(ANTHROPIC)]
            assert max(lead_saw) >= 2, lead_saw
            assert len(models.main_requests(RESPONSES)) >= 4  # per worker: a tool call, a reply
    finally:
        ozweb.stop()


def agent(handle: str, models: ModelServer) -> dict[str, Any]:
    """The demo's agent as `scenario_agents` makes it for models; the team's providers point
    at the model server."""
    if handle == "lead":
        return {
            "handle": handle, "harness": "claude", "model": "claude-fake",
            "instructions": MODEL_INSTRUCTIONS[handle],
            "environment": {"CLAUDE_CODE_MAX_RETRIES": "1"},
        }  # fmt: skip
    return {
        "handle": handle, "harness": "codex", "model": "gpt-fake",
        "instructions": MODEL_INSTRUCTIONS[handle],
    }  # fmt: skip
