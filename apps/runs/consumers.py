"""`/ws/runs/{id}/`: the run page's live status (htmx ws extension)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.core.errors import NotFound
from apps.core.websocket import authenticated_user
from apps.runs.events import run_group
from apps.runs.selectors import access_run
from apps.teams.consumers import MemberConsumer


class RunConsumer(MemberConsumer):
    async def connect(self) -> None:
        user = authenticated_user(self.scope)
        await self.accept()
        if user is None:
            await self.close(code=4401)
            return
        try:
            _, run = await database_sync_to_async(access_run)(
                user=user, run_id=int(self.scope["url_route"]["kwargs"]["run_id"])
            )
        except NotFound:
            await self.close(code=4404)
            return
        await self.follow_membership(team_id=run.team_id, user_id=user.pk)
        self.group = run_group(run.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_changed(self, event: dict[str, Any]) -> None:
        await self.send(event["html"])
