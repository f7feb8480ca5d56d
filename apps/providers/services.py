"""Writing model providers. The API key is write-only: encrypted here (apps.core.secretbox),
decrypted only by `provider_api_key` for the gateway's upstream request, never returned,
logged, shown or put in an event."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from apps.agents.models import Agent
from apps.core import secretbox
from apps.core.errors import Conflict, ServiceError
from apps.providers.models import Provider, ProviderKind
from apps.providers.prices import prices_clean
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import require_role

MAX_KEY_CHARS = 4096


def _require_admin(actor: Membership, provider: Provider | None = None) -> None:
    require_role(
        actor,
        Role.ADMIN,
        "Only owners and admins can manage model providers.",
        team_id=provider.team_id if provider is not None else None,
    )


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "name" in fields:
        name = str(fields["name"] or "").strip()
        if not name or len(name) > 80:
            raise ServiceError("A provider's name is 1-80 characters.", field="name")
        cleaned["name"] = name
    if "kind" in fields:
        if fields["kind"] not in ProviderKind.values:
            raise ServiceError(
                f"Unknown provider kind; choose one of {', '.join(ProviderKind.values)}.",
                field="kind",
            )
        cleaned["kind"] = fields["kind"]
    if "base_url" in fields:
        base_url = str(fields["base_url"] or "").strip().rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(base_url) > 500:
            raise ServiceError(
                "The base URL is an http(s) URL, e.g. https://api.anthropic.com.", field="base_url"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ServiceError(
                "The base URL has no query, fragment or credentials (the key goes in api_key).",
                field="base_url",
            )
        cleaned["base_url"] = base_url
    if "api_key" in fields:
        key = str(fields["api_key"] or "").strip()
        if not key or len(key) > MAX_KEY_CHARS or any(c in key for c in "\r\n"):
            raise ServiceError("The API key is 1-4096 characters on one line.", field="api_key")
        cleaned["api_key_ciphertext"] = secretbox.encrypt(key)
    if "prices" in fields:
        cleaned["prices"] = prices_clean(fields["prices"])
    return cleaned


def _save(provider: Provider) -> None:
    try:
        with transaction.atomic():
            provider.save()
    except IntegrityError:
        raise Conflict(
            f"The team has a provider named {provider.name!r} already.",
            field="name",
            code="name_taken",
        ) from None


def provider_create(
    *,
    actor: Membership,
    name: str,
    kind: str,
    base_url: str,
    api_key: str,
    prices: dict[str, Any] | None = None,
) -> Provider:
    _require_admin(actor)
    cleaned = _clean(
        {"name": name, "kind": kind, "base_url": base_url, "api_key": api_key, "prices": prices}
    )
    provider = Provider(team_id=actor.team_id, **cleaned)
    _save(provider)
    return provider


def provider_update(*, actor: Membership, provider: Provider, **fields: Any) -> Provider:
    """Change some of name, kind, base_url, api_key (replaced, never read back) and prices."""
    _require_admin(actor, provider)
    unknown = set(fields) - {"name", "kind", "base_url", "api_key", "prices"}
    if unknown:
        raise ServiceError(f"Unknown provider fields: {', '.join(sorted(unknown))}.")
    for name, value in _clean(fields).items():
        setattr(provider, name, value)
    _save(provider)
    return provider


def provider_delete(*, actor: Membership, provider: Provider) -> None:
    """Agents that named it fall back to the team's provider of their harness's kind
    (Agent.provider is SET_NULL); its usage records keep their numbers."""
    _require_admin(actor, provider)
    provider.delete()


def provider_api_key(provider: Provider) -> str:
    """The real key, for the gateway's request upstream and nothing else."""
    return secretbox.decrypt(provider.api_key_ciphertext) if provider.api_key_ciphertext else ""


GATEWAY_AGENT_FIELDS = ("provider", "budget_run_tokens", "budget_run_usd", "budget_day_usd")
TEAM_BUDGET_FIELDS = ("budget_day_usd", "budget_month_usd")
MAX_BUDGET_USD = Decimal("100000000")


def _usd_budget(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ServiceError("A budget is a number of US dollars.", field=field) from None
    if not amount.is_finite() or not 0 <= amount < MAX_BUDGET_USD:
        raise ServiceError("A budget is from 0 to 100,000,000 US dollars.", field=field)
    return amount.quantize(Decimal("0.0001"))


def agent_set_gateway(*, actor: Membership, agent: Agent, **fields: Any) -> Agent:
    """The agent's provider (one of its team's, or None: the team's of its harness's kind)
    and budgets (None: no limit), which the gateway enforces."""
    require_role(
        actor, Role.ADMIN, "Only owners and admins can manage agents.", team_id=agent.team_id
    )
    unknown = set(fields) - set(GATEWAY_AGENT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown agent fields: {', '.join(sorted(unknown))}.")
    if "provider" in fields:
        provider_id = fields["provider"]
        if (
            provider_id is not None
            and not Provider.objects.filter(pk=provider_id, team_id=agent.team_id).exists()
        ):
            raise ServiceError("The team has no such provider.", field="provider")
        agent.provider_id = provider_id
    if "budget_run_tokens" in fields:
        tokens = fields["budget_run_tokens"]
        if tokens is not None and (
            isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1
        ):
            raise ServiceError(
                "A token budget is a whole number from 1.", field="budget_run_tokens"
            )
        agent.budget_run_tokens = tokens
    for name in ("budget_run_usd", "budget_day_usd"):
        if name in fields:
            setattr(agent, name, _usd_budget(fields[name], name))
    names = ["provider" if f == "provider" else f for f in fields]
    agent.save(update_fields=[*names, "updated_at"])
    return agent


def team_set_budgets(*, actor: Membership, **fields: Any) -> Team:
    """The team's daily and monthly spend limits (None: no limit)."""
    require_role(actor, Role.ADMIN, "Only owners and admins can set the team's budgets.")
    team = actor.team
    unknown = set(fields) - set(TEAM_BUDGET_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown team fields: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(team, name, _usd_budget(value, name))
    team.save(update_fields=[*fields, "updated_at"])
    return team
