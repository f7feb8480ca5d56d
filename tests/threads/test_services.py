import pytest

from apps.core.errors import PermissionDenied, ServiceError
from apps.threads import selectors, services
from apps.threads.mentions import extract_mentions
from apps.threads.models import (
    Delivery,
    DeliveryState,
    Message,
    Thread,
    ThreadKind,
    ThreadReadState,
)
from tests.factories import AgentFactory, MembershipFactory, ThreadFactory, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 64 * 1024


@pytest.fixture
def reviewer(team):
    return AgentFactory(team=team, handle="reviewer")


def test_message_post_assigns_consecutive_seqs_per_thread(owner, thread, team):
    other = ThreadFactory(team=team, name="random")

    seqs = [services.message_post(actor=owner, thread=thread, body=f"m{n}").seq for n in range(3)]
    other_seq = services.message_post(actor=owner, thread=other, body="elsewhere").seq

    assert seqs == [1, 2, 3]
    assert other_seq == 1
    thread.refresh_from_db()
    assert thread.last_seq == 3


def test_message_post_creates_a_pending_delivery_per_mentioned_agent(
    owner, thread, agent, reviewer
):
    message = services.message_post(
        actor=owner, thread=thread, body="@coder write it, @reviewer check it, @coder again"
    )

    deliveries = Delivery.objects.filter(message=message).order_by("agent__handle")
    assert [(d.agent.handle, d.state) for d in deliveries] == [
        ("coder", DeliveryState.PENDING),
        ("reviewer", DeliveryState.PENDING),
    ]


def test_a_direct_threads_agent_always_gets_a_delivery(owner, agent):
    thread = services.thread_direct_get_or_create(actor=owner, agent=agent)

    message = services.message_post(actor=owner, thread=thread, body="no mention here")

    assert thread.kind == ThreadKind.DIRECT
    assert [d.agent for d in message.deliveries.all()] == [agent]


def test_a_direct_thread_mentioning_its_agent_delivers_once(owner, agent):
    thread = services.thread_direct_get_or_create(actor=owner, agent=agent)

    message = services.message_post(actor=owner, thread=thread, body="@coder hi")

    assert message.deliveries.count() == 1


def test_thread_direct_get_or_create_returns_the_existing_thread(owner, member, agent):
    first = services.thread_direct_get_or_create(actor=owner, agent=agent)

    assert services.thread_direct_get_or_create(actor=member, agent=agent) == first
    assert Thread.objects.filter(kind=ThreadKind.DIRECT).count() == 1


def test_an_unknown_mention_is_refused_and_nothing_is_stored(owner, thread, agent):
    with pytest.raises(ServiceError, match="@ghost") as caught:
        services.message_post(actor=owner, thread=thread, body="@coder and @ghost")

    assert caught.value.code == "unknown_recipient"
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()
    thread.refresh_from_db()
    assert thread.last_seq == 0


def test_another_teams_agent_is_an_unknown_mention(owner, thread, other_team):
    with pytest.raises(ServiceError, match="@spy"):
        services.message_post(actor=owner, thread=thread, body="@spy hello")


def test_mentions_in_code_are_ignored(owner, thread, agent):
    body = "see `@ghost` and\n```python\n@dataclass\nclass X: ...\n```\n~~~\n@property\n~~~\n@coder"

    message = services.message_post(actor=owner, thread=thread, body=body)

    assert [d.agent for d in message.deliveries.all()] == [agent]


def test_emails_are_not_mentions(owner, thread):
    message = services.message_post(actor=owner, thread=thread, body="mail ada@example.com")

    assert message.deliveries.count() == 0


def test_members_may_be_mentioned_without_a_delivery(owner, thread, member):
    message = services.message_post(
        actor=owner, thread=thread, body=f"@{member.user.username} have a look"
    )

    assert message.seq == 1
    assert message.deliveries.count() == 0


def test_members_with_capitals_in_their_username_may_be_mentioned(owner, thread, team):
    MembershipFactory(team=team, user=UserFactory(username="AdaL"))

    message = services.message_post(actor=owner, thread=thread, body="@AdaL thoughts?")

    assert message.deliveries.count() == 0


def test_a_user_outside_the_team_is_an_unknown_mention(owner, thread, other_team):
    outsider = other_team["owner"].user.username

    with pytest.raises(ServiceError, match=f"@{outsider}"):
        services.message_post(actor=owner, thread=thread, body=f"@{outsider} hi")


def test_mentions_are_extracted_lowercased_once_each_in_order():
    body = "@Coder, ask @reviewer. Then @coder again; not a@b.c nor `@x`"

    assert extract_mentions(body) == ["coder", "reviewer"]


def test_a_body_over_64_kib_is_refused_with_a_clear_message(owner, thread):
    with pytest.raises(ServiceError) as caught:
        services.message_post(actor=owner, thread=thread, body="x" * (LIMIT + 1))

    assert caught.value.code == "too_large"
    assert "65,537 bytes; the limit is 65,536 bytes" in caught.value.message
    assert not Message.objects.exists()


def test_the_limit_counts_utf8_bytes(owner, thread):
    with pytest.raises(ServiceError, match="limit"):
        services.message_post(actor=owner, thread=thread, body="é" * (LIMIT // 2 + 1))


def test_a_body_of_exactly_64_kib_is_accepted(owner, thread):
    message = services.message_post(actor=owner, thread=thread, body="x" * LIMIT)

    assert len(Message.objects.get(pk=message.pk).body) == LIMIT


@pytest.mark.parametrize("body", ["", "   \n\t"])
def test_an_empty_body_is_refused(owner, thread, body):
    with pytest.raises(ServiceError, match="Write something"):
        services.message_post(actor=owner, thread=thread, body=body)

    assert not Message.objects.exists()


def test_viewers_cannot_post_or_create_threads(viewer, thread, agent):
    with pytest.raises(PermissionDenied):
        services.message_post(actor=viewer, thread=thread, body="hello")
    with pytest.raises(PermissionDenied):
        services.thread_create(actor=viewer, name="mine")
    with pytest.raises(PermissionDenied):
        services.thread_direct_get_or_create(actor=viewer, agent=agent)

    assert not Message.objects.exists()


def test_posting_to_another_teams_thread_is_refused(owner, other_team):
    with pytest.raises(PermissionDenied):
        services.message_post(actor=owner, thread=other_team["thread"], body="hello")


def test_thread_create_normalises_names_and_refuses_duplicates(member):
    thread = services.thread_create(actor=member, name=" #Release Notes ", topic="  v2  ")

    assert (thread.name, thread.topic, thread.label) == ("release-notes", "v2", "#release-notes")
    with pytest.raises(ServiceError, match="already exists"):
        services.thread_create(actor=member, name="release-notes")
    with pytest.raises(ServiceError, match="channel name"):
        services.thread_create(actor=member, name="no/slashes")


def test_messages_append_takes_a_block_of_seqs_with_deliveries(thread, agent, reviewer):
    items = [
        services.NewMessage(body="one", author_agent=agent),
        services.NewMessage(body="two", author_agent=agent, recipients=[reviewer, reviewer]),
        services.NewMessage(body="three", kind="status"),
    ]

    messages = services.messages_append(thread=thread, items=items)

    assert [m.seq for m in messages] == [1, 2, 3]
    assert [len(m.delivery_rows()) for m in messages] == [0, 1, 0]
    assert services.messages_append(thread=thread, items=[]) == []
    thread.refresh_from_db()
    assert thread.last_seq == 3


def test_messages_append_returns_each_row_as_stored(thread, agent, reviewer, owner):
    """The objects returned carry the ids, seqs and links of the rows written (on PostgreSQL
    one statement inserts them all and they are matched back)."""
    services.messages_append(thread=thread, items=[services.NewMessage(body="first")])
    items = [
        services.NewMessage(body="a", author_agent=agent, recipients=[reviewer]),
        services.NewMessage(body="b", author_user=owner.user, recipients=[agent, reviewer]),
    ]

    messages = services.messages_append(thread=thread, items=items, read_by=owner.user)

    stored = {m.pk: (m.seq, m.body) for m in Message.objects.filter(thread=thread)}
    assert [(m.pk, m.seq, m.body) for m in messages] == [(m.pk, *stored[m.pk]) for m in messages]
    assert [m.seq for m in messages] == [2, 3]
    rows = {d.pk: (d.message_id, d.agent_id) for d in Delivery.objects.all()}
    returned = [d for m in messages for d in m.delivery_rows()]
    assert [(d.message_id, d.agent_id) for d in returned] == [
        (messages[0].pk, reviewer.pk), (messages[1].pk, agent.pk), (messages[1].pk, reviewer.pk)
    ]  # fmt: skip
    assert {d.pk: (d.message_id, d.agent_id) for d in returned} == rows
    assert ThreadReadState.objects.get(thread=thread, user=owner.user).last_read_seq == 3
    # The mark only moves forward, and a later append moves it on.
    services.messages_append(
        thread=thread, items=[services.NewMessage(body="c")], read_by=owner.user
    )
    assert ThreadReadState.objects.get(thread=thread, user=owner.user).last_read_seq == 4


def test_posting_marks_the_thread_read_for_the_author(owner, member, thread):
    services.message_post(actor=member, thread=thread, body="one")
    services.message_post(actor=member, thread=thread, body="two")

    unread = {t.pk: t.unread for t in selectors.thread_list(team=thread.team, user=member.user)}
    assert unread[thread.pk] == 0
    unread = {t.pk: t.unread for t in selectors.thread_list(team=thread.team, user=owner.user)}
    assert unread[thread.pk] == 2


def test_thread_mark_read_clears_unread_and_never_moves_back(owner, member, thread):
    services.message_post(actor=member, thread=thread, body="one")
    services.message_post(actor=member, thread=thread, body="two")
    services.message_post(actor=member, thread=thread, body="three")

    services.thread_mark_read(thread=thread, user=owner.user, seq=2)
    [annotated] = selectors.thread_list(team=thread.team, user=owner.user)
    assert annotated.unread == 1

    services.thread_mark_read(thread=thread, user=owner.user, seq=1)
    [annotated] = selectors.thread_list(team=thread.team, user=owner.user)
    assert annotated.unread == 1

    services.thread_mark_read(thread=thread, user=owner.user)
    [annotated] = selectors.thread_list(team=thread.team, user=owner.user)
    assert annotated.unread == 0


def test_messages_after_and_before_page_in_seq_order(thread, post_messages):
    post_messages(thread, 10)

    assert [m.seq for m in selectors.messages_after(thread=thread, since=7, limit=50)] == [8, 9, 10]
    assert [m.seq for m in selectors.messages_after(thread=thread, since=0, limit=2)] == [1, 2]
    assert [m.seq for m in selectors.messages_before(thread=thread, before=None, limit=3)] == [
        8,
        9,
        10,
    ]
    assert [m.seq for m in selectors.messages_before(thread=thread, before=4, limit=5)] == [1, 2, 3]


def test_access_thread_hides_other_teams(owner, thread, other_team):
    from apps.core.errors import NotFound

    assert selectors.access_thread(user=owner.user, thread_id=thread.pk) == (owner, thread)
    with pytest.raises(NotFound):
        selectors.access_thread(user=owner.user, thread_id=other_team["thread"].pk)


def test_access_delivery_hides_other_teams_and_other_threads(owner, thread, team, other_team):
    from apps.core.errors import NotFound

    AgentFactory(team=team, handle="coder")
    [ours] = services.message_post(actor=owner, thread=thread, body="@coder hi").deliveries.all()
    [theirs] = services.message_post(
        actor=other_team["owner"], thread=other_team["thread"], body="@spy hi"
    ).deliveries.all()

    assert selectors.access_delivery(user=owner.user, delivery_id=ours.pk) == (owner, ours)
    with pytest.raises(NotFound):
        selectors.access_delivery(user=owner.user, delivery_id=theirs.pk)
    with pytest.raises(NotFound):
        selectors.access_delivery(
            user=owner.user, delivery_id=ours.pk, thread_id=ThreadFactory(team=team).pk
        )
