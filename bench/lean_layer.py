"""An experiment for bench/feed.py (`--layers memory-lean`), not used by the app.

channels' InMemoryChannelLayer does, per delivery, work that grows with the number of
viewers: `receive()` and `group_send()` call `_clean_expired()`, a scan of every channel and
every group membership (O(viewers) per delivery, O(viewers²) per message), and `send()`
deep-copies the event for each channel. This subclass scans for expired messages at most once
a second and copies only the top-level dict (the consumers in apps/ never mutate an event), so
the benchmark can show what those two costs are worth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

CLEAN_EVERY_SECONDS = 1.0


class LeanInMemoryChannelLayer(InMemoryChannelLayer):
    _last_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_clean >= CLEAN_EVERY_SECONDS:
            self._last_clean = now
            super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.queues.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)  # never suspends: a task each buys nothing
