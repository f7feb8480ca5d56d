"""The websocket answer to a path that no route matches (an unknown path, or an id out of
range): closed with 4404, as a route closes for a row the user may not see, not an error."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

CLOSE_NOT_FOUND = 4404


class NotFoundConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)
