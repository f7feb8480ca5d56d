"""Who is calling the agent API: a run (active), acting as its agent, in its team."""

from __future__ import annotations

from dataclasses import dataclass

from apps.agents.models import Agent
from apps.runs.models import Run
from apps.teams.models import Team


@dataclass(frozen=True)
class AgentContext:
    """The caller of an agent verb: the run its token belongs to, with its agent and team."""

    run: Run

    @property
    def agent(self) -> Agent:
        return self.run.agent

    @property
    def team(self) -> Team:
        return self.run.team
