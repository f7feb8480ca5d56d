"""Reading model providers, scoped to the acting team; which provider a run's model traffic
goes to."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from apps.agents.models import Agent, Harness
from apps.core.errors import NotFound
from apps.providers.models import Provider, ProviderKind
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team

# The API each harness speaks, in order of preference, when its agent names no provider.
HARNESS_KINDS: dict[str, tuple[str, ...]] = {
    Harness.CLAUDE: (ProviderKind.ANTHROPIC,),
    Harness.CODEX: (ProviderKind.OPENAI,),
    Harness.GEMINI: (ProviderKind.GEMINI,),
    Harness.OPENCODE: (ProviderKind.ANTHROPIC, ProviderKind.OPENAI),
}


def provider_list(*, team: Team) -> QuerySet[Provider]:
    return Provider.objects.filter(team=team).order_by("name", "id")


def access_provider(
    *, user: User | AnonymousUser, provider_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Provider]:
    """The user's membership (checked for `role`) and the provider; another team's provider
    is NotFound, as a missing one is."""
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise NotFound()
    return access_team(user=user, team_id=provider.team_id, role=role), provider


def provider_for_agent(*, agent: Agent) -> Provider | None:
    """The provider the agent's model traffic goes to: its own, else the team's first of the
    kind its harness speaks; None when there is none (the agent brings its own key)."""
    if agent.provider_id is not None:
        return Provider.objects.filter(pk=agent.provider_id, team_id=agent.team_id).first()
    kinds = HARNESS_KINDS.get(agent.harness, ())
    if not kinds:
        return None
    candidates = list(
        Provider.objects.filter(team_id=agent.team_id, kind__in=kinds).order_by("name", "id")
    )
    for kind in kinds:
        for provider in candidates:
            if provider.kind == kind:
                return provider
    return None
