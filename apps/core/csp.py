"""django-csp's middleware, with the settings' policy built once instead of per response.

django-csp builds the Content-Security-Policy header from settings on every response: a
dataclasses.asdict of the response's policy parts (deep copies, ~60 µs for two of them) and
the policy itself (~30 µs), 3-4% of an agent message's CPU (bench/writes.py, py-spy). When a
response and its request ask for nothing of their own (no `@csp_update`, `@csp_replace`,
`@csp`, nor a nonce), the header is a function of the settings alone: it is built once per
setting value and reused; everything else is built by django-csp as before. The parts are
handed over as they are, not deep-copied: build_policy only reads them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from csp import middleware as csp_middleware
from csp.middleware import PolicyParts
from csp.utils import build_policy
from django.core.signals import setting_changed

POLICY_SETTINGS = frozenset({"CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"})


@functools.cache
def settings_policy(report_only: bool) -> str:
    return build_policy(report_only=report_only)


def policy(
    config: Any = None,
    update: Any = None,
    replace: Any = None,
    nonce: str | None = None,
    report_only: bool = False,
) -> str:
    """django-csp's build_policy, cached for the settings' own policy."""
    if config is None and update is None and replace is None and nonce is None:
        return settings_policy(report_only)
    return build_policy(config, update, replace, nonce, report_only)


def _policy_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in POLICY_SETTINGS:
        settings_policy.cache_clear()


def parts(obj: Any) -> dict[str, Any]:
    """dataclasses.asdict, without deep copies of the policy parts the middleware reads."""
    if type(obj) is PolicyParts:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dataclasses.asdict(obj)


setting_changed.connect(_policy_settings_changed)
# The middleware calls its module's asdict and build_policy by name.
csp_middleware.asdict = parts  # type: ignore[assignment]  # (asdict's stub is overloaded)
csp_middleware.build_policy = policy


class CSPMiddleware(csp_middleware.CSPMiddleware):
    """django-csp's CSPMiddleware, importing this module (settings.MIDDLEWARE names it)."""
