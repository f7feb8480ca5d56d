from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from apps.core.errors import NotFound
from apps.core.prepared import PreparedQuery
from apps.teams.models import Membership, Role, Team
from apps.teams.selectors import access_team, require_role
from apps.threads.models import Delivery, Message, Thread, ThreadReadState


def _with_authors(queryset: QuerySet[Message]) -> QuerySet[Message]:
    return queryset.select_related("author_user", "author_agent").prefetch_related(
        Prefetch("deliveries", queryset=Delivery.objects.select_related("agent"))
    )


def _with_unread(threads: QuerySet[Thread], *, user: User) -> QuerySet[Thread]:
    """Each thread annotated with `unread`: how many of its messages `user` has not read."""
    read = ThreadReadState.objects.filter(thread=OuterRef("pk"), user=user).values("last_read_seq")[
        :1
    ]
    return threads.select_related("agent").annotate(
        last_read_seq=Coalesce(Subquery(read), Value(0)),
        unread=Greatest(F("last_seq") - F("last_read_seq"), Value(0)),
    )


def thread_list(*, team: Team, user: User) -> QuerySet[Thread]:
    """The team's threads, each annotated with `unread` for this user. An archived agent's
    direct thread is left out: it is history, opened from the agent's page."""
    threads = Thread.objects.filter(team=team).filter(
        Q(agent__isnull=True) | Q(agent__archived_at__isnull=True)
    )
    return _with_unread(threads, user=user).order_by("kind", "name")


def thread_with_unread(*, thread: Thread, user: User) -> Thread:
    """`thread` read again, annotated with `unread` for this user (as thread_list has it)."""
    found = _with_unread(Thread.objects.filter(pk=thread.pk), user=user).get()
    found.team = thread.team
    return found


def thread_get(*, team: Team, thread_id: int) -> Thread:
    thread = Thread.objects.select_related("agent", "team").filter(team=team, pk=thread_id).first()
    if thread is None:
        raise NotFound()
    return thread


# No .first() and no ORDER BY: at most one row matches.
_thread_with_membership = PreparedQuery(
    lambda thread_id, user_id: (
        Thread.objects.select_related("agent", "team")
        .filter(pk=thread_id, team__memberships__user_id=user_id)
        .annotate(_m_id=F("team__memberships__id"), _m_role=F("team__memberships__role"))
        .order_by()
    ),
    thread_id=int,
    user_id=int,
)


def access_thread(
    *, user: User | AnonymousUser, thread_id: int, role: Role = Role.VIEWER
) -> tuple[Membership, Thread]:
    """The thread and the user's membership of its team, checked for `role`; another team's
    thread is NotFound, like a missing one (see access_team)."""
    if not user.is_authenticated:
        raise NotFound()
    # One query, thread and membership together, compiled once (apps.core.prepared): every
    # post and page load starts here.
    found = _thread_with_membership(thread_id=thread_id, user_id=user.pk)
    if not found:
        raise NotFound()
    [thread] = found
    # What a role check needs; created_at and updated_at load on first use (nothing here does).
    membership = Membership.from_db(
        Membership.objects.db,
        ["id", "team_id", "user_id", "role"],
        [thread._m_id, thread.team_id, user.pk, thread._m_role],
    )
    membership.team = thread.team
    if isinstance(user, User):
        membership.user = user  # known already: actor.user needs no query
    require_role(membership, role)
    return membership, thread


def access_delivery(
    *,
    user: User | AnonymousUser,
    delivery_id: int,
    role: Role = Role.VIEWER,
    thread_id: int | None = None,
) -> tuple[Membership, Delivery]:
    """The delivery (with its agent, message and thread) and the user's membership of its
    team, checked for `role`; NotFound for another team's, or when `thread_id` is given and
    the delivery is of a message in another thread."""
    delivery = (
        Delivery.objects.select_related("agent", "message__thread").filter(pk=delivery_id).first()
    )
    if delivery is None or (thread_id is not None and delivery.message.thread_id != thread_id):
        raise NotFound()
    thread = delivery.message.thread
    membership = access_team(user=user, team_id=thread.team_id, role=role)
    thread.team = membership.team
    return membership, delivery


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
