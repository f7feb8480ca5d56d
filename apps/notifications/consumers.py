"""`/ws/notifications/`: the signed-in user's unread count and new notifications, as JSON, for
the sidebar badge and browser notifications (static/ozweb/notifications.js)."""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.websocket import authenticated_user
from apps.notifications.events import unread_event, user_group
from apps.notifications.selectors import unread_count

CLOSE_UNAUTHENTICATED = 4401


class NotificationConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = authenticated_user(self.scope)
        await self.accept()
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.group = user_group(user.pk)
        self.groups = [self.group]  # channels leaves it on disconnect
        # Joined before the count is read, so no notification falls between the two.
        await self.channel_layer.group_add(self.group, self.channel_name)
        count = await database_sync_to_async(unread_count)(user_id=user.pk)
        await self.send(json.dumps(unread_event(unread=count)))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # the server speaks; reading and marking read go over HTTP

    async def notifications_new(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps(event))

    async def notifications_unread(self, event: dict[str, Any]) -> None:
        await self.send(json.dumps(event))
