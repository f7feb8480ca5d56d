"""Run-scoped tokens: issued when a run starts, valid only while that run is active."""

from __future__ import annotations

import copy
import functools
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models, router
from django.db.models import signals
from django.db.models.base import ModelState

from apps.agents.models import Agent
from apps.core import sql
from apps.core.prepared import PreparedQuery
from apps.core.secretbox import token_hash
from apps.runs.models import ACTIVE_STATUSES, Run, RunToken
from apps.teams.models import Team
from apps.threads.models import Thread

TOKEN_PREFIX = "ozr_"  # noqa: S105 -- a marker, not a secret
# How long a run's loaded agent, team and thread are reused between its calls. Whether the
# token still works is asked of the database on every call.
RUN_CACHE_SECONDS = 5.0
RUN_CACHE_MAX = 2000

M = TypeVar("M", bound=models.Model)


_CONTAINERS = frozenset({dict, list})  # what a JSON field's value may be that can change


def _own(values: Any) -> list[Any]:
    """The values, with JSON objects and lists copied: the rest are immutable."""
    return [copy.deepcopy(v) if type(v) in _CONTAINERS else v for v in values]


def _values(instance: models.Model) -> tuple[Any, ...]:
    return tuple(_own(getattr(instance, name) for name in _attnames(type(instance))))


@functools.cache
def _attnames(model: type[models.Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _instance(model: type[M], values: tuple[Any, ...]) -> M:
    """A new instance of `model`, as if loaded from the database with these values.

    Four per agent call: built as `Model.__init__` leaves a loaded instance (its field values
    in `__dict__`, a fresh `_state`), without that method's setattr per field through each
    descriptor (~60 µs an instance; bench/writes.py). Models that something listens to on
    init get Django's own."""
    db = router.db_for_read(model)
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return model.from_db(db, _attnames(model), _own(values))
    instance = model.__new__(model)
    instance.__dict__.update(zip(_attnames(model), _own(values), strict=True))
    state = instance._state = ModelState()
    state.adding = False
    state.db = db
    return instance


@dataclass(frozen=True)
class _LoadedRun:
    """A run and its agent, team and thread as loaded: their field values, not instances, so
    that each caller builds instances of its own."""

    at: float
    run_id: int
    run: tuple[Any, ...]
    agent: tuple[Any, ...]
    team: tuple[Any, ...]
    thread: tuple[Any, ...] | None

    @classmethod
    def of(cls, run: Run, *, at: float) -> _LoadedRun:
        thread = _values(run.thread) if run.thread is not None else None
        return cls(at, run.pk, _values(run), _values(run.agent), _values(run.team), thread)

    def instance(self) -> Run:
        run = _instance(Run, self.run)
        run.agent = _instance(Agent, self.agent)
        run.team = _instance(Team, self.team)
        if self.thread is not None:
            run.thread = _instance(Thread, self.thread)
        return run


# Each run's is loaded again every RUN_CACHE_SECONDS (apps.core.prepared: compiled once).
_run_loaded: PreparedQuery[Run] = PreparedQuery(
    lambda run_id: Run.objects.select_related("agent", "team", "thread").filter(pk=run_id),
    run_id=int,
)

_runs: dict[str, _LoadedRun] = {}  # by key hash
_runs_lock = threading.Lock()


def token_issue(*, run: Run) -> str:
    """A new token for `run` (replacing any earlier one); only its hash is kept."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    RunToken.objects.update_or_create(run=run, defaults={"key_hash": token_hash(raw)})
    return raw


def run_for_token(raw: str) -> Run | None:
    """The active run a token belongs to, or None (unknown, malformed, or its run ended).

    Agents call many times a second: the check is one indexed statement, and the run's agent,
    team and thread, loaded once, are reused for a few seconds. Each caller gets instances of
    its own, built from the loaded values: what one caller changes, no other one sees.
    """
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    key = token_hash(raw)
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
    if cached is not None and cached.run_id == found[0] and now - cached.at < RUN_CACHE_SECONDS:
        return cached.instance()
    loaded_runs = _run_loaded(run_id=found[0])
    if not loaded_runs:
        return None
    run = loaded_runs[0]
    loaded = _LoadedRun.of(run, at=now)
    with _runs_lock:
        if len(_runs) >= RUN_CACHE_MAX:
            for stale in [k for k, cached in _runs.items() if now - cached.at >= RUN_CACHE_SECONDS]:
                del _runs[stale]
            if len(_runs) >= RUN_CACHE_MAX:
                _runs.clear()
        _runs[key] = loaded
    return run
