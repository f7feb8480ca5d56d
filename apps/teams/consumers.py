"""What every websocket consumer that shows a team's rows shares: it lasts only as long as
its user's membership of that team."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from apps.teams.events import member_group

# The team no longer exists for this user: the close code of a row they may not see.
CLOSE_ACCESS_REVOKED = 4404


class MemberConsumer(AsyncWebsocketConsumer):
    """Once authorised, a consumer calls `follow_membership`; removing the member from the
    team (apps.teams.services.membership_remove) then closes the socket. Their next connection
    is refused like any outsider's."""

    async def follow_membership(self, *, team_id: int, user_id: int) -> None:
        group = member_group(team_id, user_id)
        self.groups = [*self.groups, group]  # channels leaves them on disconnect
        await self.channel_layer.group_add(group, self.channel_name)

    async def team_access_revoked(self, event: dict[str, Any]) -> None:
        await self.close(code=CLOSE_ACCESS_REVOKED)
