"""The one place that talks to the channel layer.

Services call `broadcast_on_commit`: the event goes out only once the transaction that wrote the
state has committed, so a client that reacts to it by reading the database sees that state.
The event may be given as a builder, so rendering happens after the locks are released.
The database stays the source of truth: a dropped frame is recovered by the client resuming
from its last `seq`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

Event = dict[str, Any]


def broadcast_on_commit(group: str, event: Event | Callable[[], Event]) -> None:
    def send() -> None:
        if _nobody_in(group):
            return  # rendering an event nobody receives is the costliest part of a broadcast
        try:
            built = event() if callable(event) else event
        except Exception:
            logger.exception("building the event for %s failed", group)
            return
        broadcast_now(group, built)

    transaction.on_commit(send)


def _nobody_in(group: str) -> bool:
    """True when the layer is in this process and the group has no member; a layer shared
    with other processes (Redis) cannot tell, so this is False there."""
    layer = get_channel_layer()
    return isinstance(layer, InMemoryChannelLayer) and not layer.groups.get(group)


def broadcast_now(group: str, event: Event) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        # A realtime hiccup must never undo or fail a committed write; clients backfill.
        logger.exception("group_send to %s failed", group)
