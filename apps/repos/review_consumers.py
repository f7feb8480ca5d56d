"""`/ws/changes/{id}/` and `/ws/artifacts/{id}/review/`: the review pages' live comments and
reviews (htmx ws extension, out-of-band swaps). Writes go over HTTP; these only push."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from channels.db import database_sync_to_async

from apps.artifacts.selectors import access_artifact
from apps.core.consumers import CLOSE_NOT_FOUND
from apps.core.errors import NotFound
from apps.core.websocket import authenticated_user
from apps.repos import review_events
from apps.repos.selectors import access_change
from apps.teams.consumers import MemberConsumer

CLOSE_UNAUTHENTICATED = 4401


class ReviewConsumer(MemberConsumer):
    async def connect(self) -> None:
        user = authenticated_user(self.scope)
        await self.accept()
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        try:
            team_id, group = await database_sync_to_async(self.authorise)(user)
        except NotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.follow_membership(team_id=team_id, user_id=user.pk)
        self.group = group
        await self.channel_layer.group_add(self.group, self.channel_name)

    @abstractmethod
    def authorise(self, user: Any) -> tuple[int, str]:
        """The team and the group of the row in the URL (NotFound when the user may not)."""

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def review_html(self, event: dict[str, Any]) -> None:
        await self.send(event["html"])


class ChangeReviewConsumer(ReviewConsumer):
    def authorise(self, user: Any) -> tuple[int, str]:
        change_id = int(self.scope["url_route"]["kwargs"]["change_id"])
        _, change = access_change(user=user, change_id=change_id)
        return change.team_id, review_events.change_group(change.pk)


class ArtifactReviewConsumer(ReviewConsumer):
    def authorise(self, user: Any) -> tuple[int, str]:
        artifact_id = int(self.scope["url_route"]["kwargs"]["artifact_id"])
        _, artifact = access_artifact(user=user, artifact_id=artifact_id)
        return artifact.team_id, review_events.artifact_group(artifact.pk)
