"""Issue 12's write path: fewer queries per post, with every check it made before."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from apps.core.errors import NotFound, PermissionDenied
from apps.teams.models import Role
from apps.threads import events
from apps.threads.models import ThreadReadState
from apps.threads.selectors import access_thread
from apps.threads.services import _mark_read_posted, message_post, thread_mark_read
from tests.conftest import api_client_for
from tests.factories import MembershipFactory, ThreadFactory

pytestmark = pytest.mark.django_db


def test_access_thread_is_one_query_with_the_users_own_role(team, owner, viewer, thread):
    with CaptureQueriesContext(connection) as queries:
        membership, found = access_thread(user=viewer.user, thread_id=thread.pk)
    assert len(queries) == 1
    # The viewer's own membership, not the owner's row of the same team.
    assert (membership.pk, membership.role, membership.user) == (viewer.pk, "viewer", viewer.user)
    assert membership.team == team and found.team == team and found.pk == thread.pk
    with pytest.raises(PermissionDenied):
        access_thread(user=viewer.user, thread_id=thread.pk, role=Role.MEMBER)
    assert access_thread(user=owner.user, thread_id=thread.pk)[0].role == "owner"


def test_access_thread_another_teams_thread_is_not_found(viewer):
    other = ThreadFactory(team=MembershipFactory().team)
    with pytest.raises(NotFound):
        access_thread(user=viewer.user, thread_id=other.pk)
    with pytest.raises(NotFound):
        access_thread(user=viewer.user, thread_id=other.pk + 1000)


def test_rest_post_query_budget(owner, thread):
    api = api_client_for(owner.user)
    path = f"/api/v1/threads/{thread.pk}/messages/"
    assert api.post(path, {"body": "first"}, format="json").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        response = api.post(path, {"body": "no mention here"}, format="json")
    assert response.status_code == 201
    sqls = [q["sql"] for q in queries.captured_queries]
    # 16 before issue 12; no agent or member lookup without an @mention, no user re-read,
    # the token's user from the cache, one statement for the read mark.
    assert not any('FROM "agents_agent"' in s for s in sqls), sqls
    assert len([s for s in sqls if "threadreadstate" in s.lower()]) == 1, sqls
    assert len(sqls) <= 10, sqls


def test_mark_read_creates_then_only_moves_forward(owner, thread):
    thread_mark_read(thread=thread, user=owner.user, seq=5)
    assert ThreadReadState.objects.get(thread=thread, user=owner.user).last_read_seq == 5
    thread_mark_read(thread=thread, user=owner.user, seq=3)
    assert ThreadReadState.objects.get(thread=thread, user=owner.user).last_read_seq == 5
    thread_mark_read(thread=thread, user=owner.user, seq=9)
    assert ThreadReadState.objects.get(thread=thread, user=owner.user).last_read_seq == 9


def test_deleted_token_is_refused_at_once(owner, thread):
    api = api_client_for(owner.user)
    path = f"/api/v1/threads/{thread.pk}/messages/"
    assert api.get(path).status_code == 200  # now cached
    Token.objects.filter(user=owner.user).get().delete()
    assert api.get(path).status_code == 401


def test_deactivated_user_is_refused_at_once(owner, thread):
    api = api_client_for(owner.user)
    path = f"/api/v1/threads/{thread.pk}/messages/"
    assert api.get(path).status_code == 200
    owner.user.is_active = False
    owner.user.save()
    assert api.get(path).status_code == 401


def test_json_item_carries_the_encoded_frame(owner, thread):
    message = message_post(actor=owner, thread=thread, body="hello")
    item = events.json_item(message)
    assert json.loads(item["frame"]) == {"type": "message.created", "message": item["json"]}
    assert item["json"]["body"] == "hello" and item["seq"] == message.seq


def test_posters_mark_is_one_update_and_never_winds_back(owner, thread):
    _mark_read_posted(thread=thread, user=owner.user, seq=4)  # no row yet: created
    assert ThreadReadState.objects.get(thread=thread, user=owner.user).last_read_seq == 4
    with CaptureQueriesContext(connection) as queries:
        _mark_read_posted(thread=thread, user=owner.user, seq=7)
    assert len(queries) == 1
    _mark_read_posted(thread=thread, user=owner.user, seq=6)  # a late, lower one
    assert ThreadReadState.objects.get(thread=thread, user=owner.user).last_read_seq == 7
