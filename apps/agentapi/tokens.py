"""Run-scoped tokens: issued when a run starts, valid only while that run is active."""

from __future__ import annotations

import hashlib
import secrets

from apps.agentapi.models import RunToken
from apps.runs.models import ACTIVE_STATUSES, Run

TOKEN_PREFIX = "ozr_"  # noqa: S105 -- a marker, not a secret


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_issue(*, run: Run) -> str:
    """A new token for `run` (replacing any earlier one); only its hash is kept."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    RunToken.objects.update_or_create(run=run, defaults={"key_hash": _hash(raw)})
    return raw


def run_for_token(raw: str) -> Run | None:
    """The active run a token belongs to, or None (unknown, malformed, or its run ended)."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        RunToken.objects.select_related("run__agent", "run__team", "run__thread")
        .filter(key_hash=_hash(raw), run__status__in=ACTIVE_STATUSES)
        .first()
    )
    return token.run if token else None
