from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from apps.core.errors import NotFound
from apps.teams.models import Team
from apps.threads.models import Delivery, Message, Thread, ThreadReadState


def _with_authors(queryset: QuerySet[Message]) -> QuerySet[Message]:
    return queryset.select_related("author_user", "author_agent").prefetch_related(
        Prefetch("deliveries", queryset=Delivery.objects.select_related("agent"))
    )


def thread_list(*, team: Team, user: AbstractBaseUser) -> QuerySet[Thread]:
    """The team's threads, each annotated with `unread` for this user."""
    read = ThreadReadState.objects.filter(thread=OuterRef("pk"), user=user).values("last_read_seq")[
        :1
    ]
    return (
        Thread.objects.filter(team=team)
        .select_related("agent")
        .annotate(
            last_read_seq=Coalesce(Subquery(read), Value(0)),
            unread=Greatest(F("last_seq") - F("last_read_seq"), Value(0)),
        )
        .order_by("kind", "name")
    )


def thread_get(*, team: Team, thread_id: int) -> Thread:
    thread = Thread.objects.select_related("agent", "team").filter(team=team, pk=thread_id).first()
    if thread is None:
        raise NotFound()
    return thread


def thread_get_for_user(*, user: AbstractBaseUser, thread_id: int) -> Thread:
    """A thread in one of the user's teams (404 otherwise)."""
    if not user.is_authenticated:
        raise NotFound()
    thread = (
        Thread.objects.select_related("agent", "team")
        .filter(pk=thread_id, team__memberships__user=user)
        .first()
    )
    if thread is None:
        raise NotFound()
    return thread


def messages_after(*, thread: Thread, since: int, limit: int) -> list[Message]:
    """Messages with seq > since, oldest first."""
    return list(
        _with_authors(Message.objects.filter(thread=thread, seq__gt=since)).order_by("seq")[:limit]
    )


def messages_before(*, thread: Thread, before: int | None, limit: int) -> list[Message]:
    """The `limit` newest messages with seq < before (or the newest overall), oldest first."""
    queryset = Message.objects.filter(thread=thread)
    if before is not None:
        queryset = queryset.filter(seq__lt=before)
    newest_first = list(_with_authors(queryset).order_by("-seq")[:limit])
    return newest_first[::-1]


def message_get(*, thread: Thread, message_id: int) -> Message:
    message = _with_authors(Message.objects.filter(thread=thread, pk=message_id)).first()
    if message is None:
        raise NotFound()
    return message


def recent_activity(*, team: Team, limit: int = 15) -> list[Message]:
    return list(
        Message.objects.filter(thread__team=team)
        .select_related("thread", "author_user", "author_agent")
        .order_by("-created_at", "-id")[:limit]
    )
