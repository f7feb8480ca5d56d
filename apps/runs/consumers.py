"""`/ws/runs/{id}/`: the run page's live status (htmx ws extension)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.errors import NotFound
from apps.runs.events import run_group
from apps.runs.selectors import run_get_for_user


class RunConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            run = await database_sync_to_async(run_get_for_user)(
                user=user, run_id=int(self.scope["url_route"]["kwargs"]["run_id"])
            )
        except NotFound:
            await self.close(code=4404)
            return
        self.group = run_group(run.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_changed(self, event: dict[str, Any]) -> None:
        await self.send(event["html"])

    async def run_wake(self, event: dict[str, Any]) -> None:
        """Meant for the executor holding the run; nothing to show."""
