"""The collaboration demo: a lead agent splits a goal between two workers, waits for both
results, and writes a summary artifact. Offline with the model-free example agents; with real
model keys, the same scenario with Claude Code and Codex agents."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.agents.models import Agent, Harness
from apps.agents.services import agent_create
from apps.teams.models import Membership, Role
from apps.teams.selectors import require_role
from apps.threads.models import Message
from apps.threads.services import message_post, thread_create_channel

GOAL = (
    "Give me a short report on the example agents that ship with ozweb: what files there "
    "are, and whether the code has problems."
)
OFFLINE_AGENTS = {
    "lead": {
        "display_name": "Lead",
        "harness": Harness.COMMAND,
        "command": "python3 -u $OZWEB_AGENTS_DIR/lead_agent.py",
        "instructions": "Splits a goal between two workers and summarises their reports.",
    },
    "worker-a": {
        "display_name": "Worker A",
        "harness": Harness.COMMAND,
        "command": "python3 -u $OZWEB_AGENTS_DIR/worker_agent.py",
        "instructions": "Makes inventories of code.",
    },
    "worker-b": {
        "display_name": "Worker B",
        "harness": Harness.COMMAND,
        "command": "python3 -u $OZWEB_AGENTS_DIR/worker_agent.py",
        "instructions": "Reviews code.",
    },
}
MODEL_INSTRUCTIONS = {
    "lead": (
        "You lead. Split the goal into two sub-goals; delegate one to @worker-a and one to "
        "@worker-b with the ozweb `delegate` tool (wait=false). Their results come back to you "
        "as messages. When you have both, read their report artifacts (list_artifacts, "
        "get_artifact) and put a summary artifact named summary.md (kind report)."
    ),
    "worker-a": "Do the sub-goal you are given and put your findings in a report artifact.",
    "worker-b": "Do the sub-goal you are given and put your findings in a report artifact.",
}


def scenario_agents(
    *, actor: Membership, harness: str = "offline", secrets: dict | None = None
) -> dict:
    """The lead and two workers, created on first use; existing ones are reused as they are."""
    agents = {}
    for handle, spec in OFFLINE_AGENTS.items():
        existing = Agent.objects.active().filter(team=actor.team, handle=handle).first()
        if existing is not None:
            agents[handle] = existing
            continue
        fields = dict(spec)
        if harness != "offline":
            fields = {
                "display_name": spec["display_name"],
                # The lead on Claude Code, the workers on Codex: cross-harness by design.
                "harness": Harness.CLAUDE if handle == "lead" else Harness.CODEX,
                "instructions": MODEL_INSTRUCTIONS[handle],
            }
        agents[handle] = agent_create(actor=actor, handle=handle, secrets=secrets, **fields)
    return agents


@transaction.atomic
def scenario_start(
    *, actor: Membership, harness: str = "offline", secrets: dict | None = None
) -> Message:
    """Create the agents and a fresh thread, and hand the lead its goal."""
    require_role(
        actor, Role.ADMIN, "Only owners and admins can start the demo (it creates agents)."
    )
    scenario_agents(actor=actor, harness=harness, secrets=secrets)
    thread = thread_create_channel(
        team=actor.team,
        name=f"collab-{timezone.now():%Y%m%d-%H%M%S}",
        topic="A lead agent, two workers, and a summary: the collaboration demo.",
        created_by=actor.user,
    )
    return message_post(actor=actor, thread=thread, body=f"@lead {GOAL}")
