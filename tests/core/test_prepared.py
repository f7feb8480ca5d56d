"""PreparedQuery returns what its queryset returns, on either database, compiled once."""

from __future__ import annotations

import pytest
from django.db.models import F

from apps.core.prepared import PreparedQuery
from apps.threads.models import Thread, ThreadKind
from tests.factories import AgentFactory, MembershipFactory, ThreadFactory

pytestmark = pytest.mark.django_db


def threads_of_member(thread_id: int, user_id: int):
    return (
        Thread.objects.select_related("agent", "team")
        .filter(pk=thread_id, team__memberships__user_id=user_id)
        .annotate(role=F("team__memberships__role"))
        .order_by()
    )


prepared = PreparedQuery(threads_of_member, thread_id=int, user_id=int)


def test_it_returns_what_the_queryset_returns_with_related_rows_and_annotations(
    django_assert_num_queries,
):
    member = MembershipFactory(role="admin")
    agent = AgentFactory(team=member.team)
    thread = ThreadFactory(team=member.team, kind=ThreadKind.DIRECT, agent=agent)
    other = ThreadFactory(team=member.team)
    prepared(thread_id=other.pk, user_id=member.user_id)  # compiled here

    with django_assert_num_queries(1):
        [found] = prepared(thread_id=thread.pk, user_id=member.user_id)
        assert found.team == member.team and found.agent == agent  # no more queries
    [expected] = threads_of_member(thread.pk, member.user_id)
    assert (found.pk, found.name, found.role, found.last_seq, found.created_at) == (
        expected.pk, expected.name, expected.role, expected.last_seq, expected.created_at
    )  # fmt: skip
    assert found.agent.handle == agent.handle
    [plain] = prepared(thread_id=other.pk, user_id=member.user_id)
    assert plain.agent is None and plain.team.name == member.team.name


def test_other_values_bind_each_call_and_scope_holds():
    member, outsider = MembershipFactory(), MembershipFactory()
    thread = ThreadFactory(team=member.team)
    assert prepared(thread_id=thread.pk, user_id=member.user_id)
    assert prepared(thread_id=thread.pk, user_id=outsider.user_id) == []  # another team's
    assert prepared(thread_id=thread.pk + 10_000, user_id=member.user_id) == []
    assert prepared(thread_id=2**70, user_id=member.user_id) == []  # out of range: no row
    assert prepared(thread_id=str(thread.pk), user_id=member.user_id)  # coerced like the ORM


def test_values_lists_work_too():
    member = MembershipFactory()
    thread = ThreadFactory(team=member.team, name="ops")
    names = PreparedQuery(
        lambda team_id: Thread.objects.filter(team_id=team_id).values_list("name", flat=True),
        team_id=int,
    )
    assert names(team_id=member.team_id) == ["ops"]
    assert names(team_id=thread.team_id + 1) == []


def test_a_value_that_does_not_reach_the_sql_unchanged_is_refused():
    contains = PreparedQuery(
        lambda name: Thread.objects.filter(name__contains=name), name=str
    )  # the lookup wraps the value in %...%
    with pytest.raises(ValueError, match="exactly once"):
        contains(name="x")
    with pytest.raises(TypeError):
        PreparedQuery(lambda when: Thread.objects.all(), when=float)
    with pytest.raises(TypeError, match="keywords"):
        prepared(thread_id=1)
