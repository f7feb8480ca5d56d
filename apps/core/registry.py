"""Interfaces through which a lower layer reaches a higher one without importing it.

The apps form layers (pyproject.toml, [tool.importlinter]): core at the bottom, then teams,
agents, threads, artifacts, runs, and the doors (agentapi, api) on top. Where lower code must
ask a higher app something ("which agents are running in this thread?", "is Docker there?",
"what else does a new team get?"), the higher app registers an implementation here from its
AppConfig.ready(), and the lower code calls it. Each interface is small and typed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol


class DeliveryRef(Protocol):
    """What the dispatcher reads of a delivery (threads' Delivery model has these)."""

    pk: int
    agent_id: int
    parent_run_id: int | None


class Dispatcher(Protocol):
    """Gets messages to agents: the runs app implements it (apps.runs.routing)."""

    def agents_running_in(self, *, thread_id: int) -> list[int]:
        """Ids of the agents with a live run in the thread (a reply there steers them)."""
        ...

    def deliveries_ready_on_commit(self, *, thread_id: int, deliveries: Sequence[Any]) -> None:
        """Once the transaction commits, hand these new pending deliveries (of messages in
        `thread_id`) to their agents: to a live run, or by starting one."""
        ...

    def agents_dispatch_on_commit(self, agent_ids: Iterable[int]) -> None:
        """Once the transaction commits, hand these agents their pending deliveries."""
        ...


_dispatcher: Dispatcher | None = None


def register_dispatcher(dispatcher: Dispatcher) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def dispatcher() -> Dispatcher:
    if _dispatcher is None:
        raise RuntimeError("no dispatcher is registered (is apps.runs in INSTALLED_APPS?)")
    return _dispatcher


# -- health checks (GET /healthz) ---------------------------------------------------------------

HealthCheck = Callable[[], dict[str, Any]]  # sync; returns {"ok": bool, ...}

_health_checks: dict[str, HealthCheck] = {}


def register_health_check(name: str, check: HealthCheck) -> None:
    _health_checks[name] = check


def health_checks() -> dict[str, HealthCheck]:
    return dict(_health_checks)


# -- what a new team gets --------------------------------------------------------------------

TeamSetupStep = Callable[..., None]  # called as step(team=..., owner=...) inside team_create

_team_setup_steps: list[TeamSetupStep] = []


def register_team_setup(step: TeamSetupStep) -> None:
    if step not in _team_setup_steps:
        _team_setup_steps.append(step)


def team_setup_steps() -> list[TeamSetupStep]:
    return list(_team_setup_steps)


# -- domain events (notifications, outgoing webhooks) ------------------------------------------

# Called as handler(event, team_id, data) after the transaction that published the event commits.
# Event names are the webhook names: "run.finished", "approval.requested", "message.mention",
# "change.opened", "change.merged"; data is JSON-ready.
EventHandler = Callable[[str, int, dict[str, Any]], None]

_event_handlers: list[EventHandler] = []


def register_event_handler(handler: EventHandler) -> None:
    if handler not in _event_handlers:
        _event_handlers.append(handler)


def event_handlers_registered() -> bool:
    """Whether an event would reach anyone: a publisher skips building costly data if not."""
    return bool(_event_handlers)


def publish_event(event: str, *, team_id: int, data: dict[str, Any]) -> None:
    """Tell the higher apps (notifications, webhooks) that something happened, once the
    current transaction commits (never for work that is rolled back)."""
    from django.db import transaction

    handlers = list(_event_handlers)
    if not handlers:
        return

    def run() -> None:
        for handler in handlers:
            try:
                handler(event, team_id, data)
            except Exception:
                # One failing subscriber must not hide the event from the others, nor fail
                # the request that already committed.
                logging.getLogger("ozweb.events").exception("event handler failed: %s", event)

    transaction.on_commit(run)
