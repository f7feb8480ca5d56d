import pytest

from apps.threads.models import Delivery, Message, Thread, ThreadKind
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

LIMIT = 64 * 1024


def messages_url(thread) -> str:
    return f"/api/v1/threads/{thread.pk}/messages/"


def test_list_threads_with_unread_counts(owner_api, owner, member, team, thread, post_messages):
    post_messages(thread, 3, author=member.user)

    response = owner_api.get(f"/api/v1/teams/{team.pk}/threads/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["name"], row["label"], row["last_seq"], row["unread"]) == (
        "general",
        "#general",
        3,
        3,
    )


def test_create_a_channel(owner_api, team):
    response = owner_api.post(
        f"/api/v1/teams/{team.pk}/threads/", {"name": "Release", "topic": "v2"}, format="json"
    )

    assert response.status_code == 201
    assert (response.json()["name"], response.json()["kind"]) == ("release", "channel")


def test_a_channel_needs_a_valid_unused_name(owner_api, team, thread):
    missing = owner_api.post(f"/api/v1/teams/{team.pk}/threads/", {}, format="json")
    taken = owner_api.post(f"/api/v1/teams/{team.pk}/threads/", {"name": "general"}, format="json")

    assert (missing.status_code, missing.json()["field"]) == (400, "name")
    assert (taken.status_code, taken.json()["detail"]) == (
        409,
        "#general already exists in this team.",
    )


def test_create_a_direct_thread_once(owner_api, team, agent):
    payload = {"kind": "direct", "agent": agent.pk}

    first = owner_api.post(f"/api/v1/teams/{team.pk}/threads/", payload, format="json")
    again = owner_api.post(f"/api/v1/teams/{team.pk}/threads/", payload, format="json")

    assert first.status_code == 201
    assert (first.json()["kind"], first.json()["agent"]) == ("direct", agent.pk)
    assert again.json()["id"] == first.json()["id"]
    assert Thread.objects.filter(kind=ThreadKind.DIRECT).count() == 1


def test_a_direct_thread_needs_an_agent(owner_api, team):
    response = owner_api.post(
        f"/api/v1/teams/{team.pk}/threads/", {"kind": "direct"}, format="json"
    )

    assert (response.status_code, response.json()["field"]) == (400, "agent")


def test_a_viewer_cannot_create_threads(viewer, team):
    client = api_client_for(viewer.user)

    response = client.post(f"/api/v1/teams/{team.pk}/threads/", {"name": "mine"}, format="json")

    assert response.status_code == 403


def test_thread_detail(owner_api, thread):
    response = owner_api.get(f"/api/v1/threads/{thread.pk}/")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["label"]) == (thread.pk, "#general")


def test_messages_since_come_oldest_first(owner_api, thread, post_messages):
    post_messages(thread, 5)

    response = owner_api.get(messages_url(thread), {"since": 2})

    assert response.status_code == 200
    body = response.json()
    assert [m["seq"] for m in body["results"]] == [3, 4, 5]
    assert body["results"][0]["body"] == "message 3"
    assert body["last_seq"] == 5
    assert body["next"] is None


def test_messages_page_with_next_until_the_end(owner_api, thread, post_messages):
    post_messages(thread, 5)

    seqs, url = [], messages_url(thread) + "?limit=2"
    while url:
        page = owner_api.get(url).json()
        seqs += [m["seq"] for m in page["results"]]
        url = page["next"]

    assert seqs == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "abc"}, "since"),
        ({"since": "-1"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "lots"}, "limit"),
    ],
)
def test_bad_paging_parameters_are_400(owner_api, thread, params, field):
    response = owner_api.get(messages_url(thread), params)

    assert response.status_code == 400
    assert response.json()["field"] == field


def test_limit_bounds_are_inclusive(owner_api, thread, post_messages):
    post_messages(thread, 3)

    assert len(owner_api.get(messages_url(thread), {"limit": 1}).json()["results"]) == 1
    assert len(owner_api.get(messages_url(thread), {"limit": 200}).json()["results"]) == 3


def test_post_a_message_returns_its_seq_and_deliveries(owner_api, owner, thread, agent):
    response = owner_api.post(messages_url(thread), {"body": "@coder ship it"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["seq"] == 1
    assert body["author"] == {
        "type": "user",
        "id": owner.user.pk,
        "handle": owner.user.username,
        "name": owner.user.username,
    }
    assert [(d["handle"], d["state"]) for d in body["deliveries"]] == [("coder", "pending")]


def test_post_refuses_a_body_over_64_kib_with_a_clear_message(owner_api, thread):
    response = owner_api.post(messages_url(thread), {"body": "x" * (LIMIT + 1)}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "too_large"
    assert "the limit is 65,536 bytes" in response.json()["detail"]
    assert not Message.objects.exists()


def test_post_accepts_exactly_64_kib(owner_api, thread):
    response = owner_api.post(messages_url(thread), {"body": "x" * LIMIT}, format="json")

    assert response.status_code == 201


def test_post_refuses_an_unknown_mention_and_stores_nothing(owner_api, thread, agent):
    response = owner_api.post(messages_url(thread), {"body": "@coder and @ghost"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "No agent or member of this team is called @ghost.",
        "code": "unknown_recipient",
        "field": "body",
        "errors": {"body": ["No agent or member of this team is called @ghost."]},
    }
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("payload", [{}, {"body": ""}, {"body": "   "}, {"body": None}])
def test_post_refuses_an_empty_body(owner_api, thread, payload):
    response = owner_api.post(messages_url(thread), payload, format="json")

    assert response.status_code == 400
    assert not Message.objects.exists()


def test_a_viewer_cannot_post(viewer, thread):
    response = api_client_for(viewer.user).post(messages_url(thread), {"body": "hi"}, format="json")

    assert response.status_code == 403
    assert not Message.objects.exists()
