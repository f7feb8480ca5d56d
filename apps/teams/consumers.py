"""`/ws/teams/{id}/`: the live dashboard (threads with unread counts, agents, activity)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.core.errors import NotFound
from apps.teams import selectors
from apps.teams.events import team_group
from apps.threads.selectors import thread_list


class TeamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            self.membership = await database_sync_to_async(selectors.membership_get)(
                user=user, team_id=int(self.scope["url_route"]["kwargs"]["team_id"])
            )
        except NotFound:
            await self.close(code=4404)
            return
        self.group = team_group(self.membership.team_id)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def team_agent(self, event: dict[str, Any]) -> None:
        await self.send(event["html"])

    async def team_agent_removed(self, event: dict[str, Any]) -> None:
        await self.send(f'<div id="agent-{int(event["agent_id"])}" hx-swap-oob="delete"></div>')

    async def team_activity(self, event: dict[str, Any]) -> None:
        await self.send(event["html"] + await self.render_threads())

    async def team_thread(self, event: dict[str, Any]) -> None:
        await self.send(await self.render_threads())

    @database_sync_to_async
    def render_threads(self) -> str:
        """The thread list with this viewer's unread counts (one query)."""
        threads = list(thread_list(team=self.membership.team, user=self.scope["user"]))
        return render_to_string(
            "teams/dashboard.html#thread_list",
            {"threads": threads, "team": self.membership.team, "oob": True},
        )
