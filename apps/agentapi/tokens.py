"""Run-scoped tokens: issued when a run starts, valid only while that run is active."""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time

from apps.agentapi.models import RunToken
from apps.core import sql
from apps.runs.models import ACTIVE_STATUSES, Run

TOKEN_PREFIX = "ozr_"  # noqa: S105 -- a marker, not a secret
# How long a run's loaded agent, team and thread are reused between its calls. Whether the
# token still works is asked of the database on every call.
RUN_CACHE_SECONDS = 5.0
RUN_CACHE_MAX = 2000

_runs: dict[str, tuple[float, Run]] = {}  # key hash → (loaded at, run with its relations)
_runs_lock = threading.Lock()


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_issue(*, run: Run) -> str:
    """A new token for `run` (replacing any earlier one); only its hash is kept."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    RunToken.objects.update_or_create(run=run, defaults={"key_hash": _hash(raw)})
    return raw


def run_for_token(raw: str) -> Run | None:
    """The active run a token belongs to, or None (unknown, malformed, or its run ended).

    Agents call many times a second: the check is one indexed statement, and the run's agent,
    team and thread, loaded once, are reused for a few seconds (each caller gets its own copy).
    """
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    key = _hash(raw)
    found = sql.row(
        "SELECT t.{RunToken.run} FROM {RunToken} t JOIN {Run} r ON r.{Run.id} = t.{RunToken.run} "
        "WHERE t.{RunToken.key_hash} = %s AND r.{Run.status} IN ({active})",
        [key, *ACTIVE_STATUSES],
        RunToken=RunToken,
        Run=Run,
        active=sql.markers(ACTIVE_STATUSES),
    )
    now = time.monotonic()
    with _runs_lock:
        if found is None:
            _runs.pop(key, None)
            return None
        cached = _runs.get(key)
    if cached is not None and cached[1].pk == found[0] and now - cached[0] < RUN_CACHE_SECONDS:
        return _copy(cached[1])
    run = Run.objects.select_related("agent", "team", "thread").filter(pk=found[0]).first()
    if run is None:
        return None
    with _runs_lock:
        if len(_runs) >= RUN_CACHE_MAX:
            for stale in [k for k, (at, _) in _runs.items() if now - at >= RUN_CACHE_SECONDS]:
                del _runs[stale]
            if len(_runs) >= RUN_CACHE_MAX:
                _runs.clear()
        _runs[key] = (now, run)
    return _copy(run)


def _copy(run: Run) -> Run:
    """A copy of `run` and of its loaded agent, team and thread, for one caller to use."""
    clone = copy.copy(run)  # Model.__getstate__ copies its state and relation cache
    cache = clone._state.fields_cache
    for name, related in cache.items():
        cache[name] = copy.copy(related)
    return clone
