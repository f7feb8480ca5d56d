"""A run's model traffic through the gateway: the environment its harness gets."""

from __future__ import annotations

from collections.abc import Mapping

from apps.agents.models import Agent
from apps.harnesses.base import MODEL_ENV_VARIABLES, Adapter
from apps.providers.selectors import provider_for_agent


def gateway_url(*, ozweb_url: str, provider_id: int) -> str:
    """The gateway's base URL for a provider, as the sandbox reaches ozweb."""
    return f"{ozweb_url.rstrip('/')}/gateway/{provider_id}"


def with_model_gateway(
    *, agent: Agent, adapter: Adapter, env: Mapping[str, str], token: str
) -> dict[str, str]:
    """`env` for the agent's harness: with a provider, its base-URL variable points at the
    gateway (`$OZWEB_URL/gateway/<id>`) and its key variable holds the run token, and the
    agent's own endpoint and key variables are gone; without one, `env` as it is."""
    provider = provider_for_agent(agent=agent)
    if provider is None or not env.get("OZWEB_URL"):
        return dict(env)
    url = gateway_url(ozweb_url=env["OZWEB_URL"], provider_id=provider.pk)
    variables = adapter.gateway_env(url=url, token=token, kind=provider.kind)
    if not variables:  # the harness does not speak the provider's API: as before
        return dict(env)
    kept = {name: value for name, value in env.items() if name not in MODEL_ENV_VARIABLES}
    return {**kept, **variables}
