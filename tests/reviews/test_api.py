"""The comments and reviews API on changes and artifacts: lines checked against the diff, the
review message to the agent, states, roles and isolation."""

from __future__ import annotations

import pytest

from apps.artifacts.services import artifact_put
from apps.repos.models import ChangeStatus, ReviewComment
from apps.threads.models import Delivery, Message, MessageKind
from tests.conftest import api_client_for
from tests.factories import AgentFactory, MembershipFactory
from tests.reviews.changes import open_change

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _runs_not_executed(manual_run_dispatch) -> None:
    """The deliveries are what is checked here; running agents is test_delivery.py."""


def comment(api, change, **fields):
    body = {"path": "calc.py", "line": 6, "body": "This should add.", **fields}
    return api.post(f"/api/v1/changes/{change.pk}/comments/", body, format="json")


def test_a_comment_on_a_line_of_the_diff_is_created_pending_with_its_code(api, change):
    response = comment(api, change)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["path"], body["line"], body["side"], body["version"]) == ("calc.py", 6, "new", 1)
    assert body["state"] == "pending"
    assert "> 6 |     return a - b" in body["context"]
    assert "  5 | def f2(a, b):" in body["context"]  # the lines around it, numbered


def test_a_line_that_is_not_in_the_diff_is_a_400_saying_so(api, change):
    response = comment(api, change, line=30)

    assert response.status_code == 400
    assert response.json()["field"] == "line"
    assert "not in the diff of version 1" in response.json()["detail"]
    assert not ReviewComment.objects.exists()


def test_a_file_not_in_the_diff_is_a_400(api, change):
    response = comment(api, change, path="README.md", line=1)

    assert response.status_code == 400
    assert response.json()["field"] == "path"


def test_the_old_side_takes_the_lines_the_diff_shows_of_the_base(api, change):
    assert comment(api, change, side="old", line=6).status_code == 201  # "return a + b", removed
    assert comment(api, change, side="old", line=20).status_code == 400


def test_a_range_must_be_in_the_diff_at_both_ends(api, change):
    assert comment(api, change, line=5, end_line=7).status_code == 201
    assert comment(api, change, line=5, end_line=40).status_code == 400
    assert comment(api, change, line=7, end_line=5).json()["field"] == "end_line"


def test_a_version_the_change_does_not_have_is_a_400(api, change):
    response = comment(api, change, version=9)

    assert response.status_code == 400
    assert response.json()["field"] == "version"


def test_a_reply_joins_its_thread(api, change):
    first = comment(api, change).json()

    reply = api.post(
        f"/api/v1/changes/{change.pk}/comments/",
        {"reply_to": first["id"], "body": "Agreed"},
        format="json",
    )

    assert reply.status_code == 201
    assert (reply.json()["reply_to"], reply.json()["line"]) == (first["id"], 6)


def test_comments_are_listed_with_their_state_and_resolved_with_patch(api, change):
    created = comment(api, change).json()

    resolved = api.patch(f"/api/v1/comments/{created['id']}/", {"state": "resolved"}, format="json")
    listed = api.get(f"/api/v1/changes/{change.pk}/comments/?state=resolved").json()

    assert resolved.status_code == 200
    assert resolved.json()["state"] == "resolved"
    assert [c["id"] for c in listed["results"]] == [created["id"]]
    assert api.get(f"/api/v1/changes/{change.pk}/comments/?state=pending").json()["count"] == 0


def test_request_changes_sends_one_message_to_the_agent_with_every_pending_comment(
    api, change, agent, thread
):
    first = comment(api, change, body="This should add.").json()
    second = comment(api, change, line=5, body="Name it add.").json()

    response = api.post(
        f"/api/v1/changes/{change.pk}/reviews/",
        {"verdict": "request_changes", "body": "Two things."},
        format="json",
    )

    assert response.status_code == 201, response.json()
    review = response.json()
    message = Message.objects.get(pk=review["message"])
    assert (message.thread_id, message.kind) == (thread.pk, MessageKind.REVIEW)
    assert message.data == {
        "change_id": change.pk, "version": 1, "review_id": review["id"],
        "verdict": "request_changes",
    }  # fmt: skip
    assert "Two things." in message.body
    assert "`calc.py` line 6" in message.body and "`calc.py` line 5" in message.body
    assert "> 6 |     return a - b" in message.body
    assert "This should add." in message.body and "Name it add." in message.body
    [delivery] = Delivery.objects.filter(message=message)
    assert delivery.agent_id == agent.pk
    states = api.get(f"/api/v1/changes/{change.pk}/comments/").json()["results"]
    assert {(c["id"], c["state"], c["sent_in"]) for c in states} == {
        (first["id"], "sent", message.pk),
        (second["id"], "sent", message.pk),
    }


def test_a_second_review_does_not_send_the_same_comments_again(api, change):
    comment(api, change)
    api.post(f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "request_changes"}, format="json")

    again = api.post(
        f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "request_changes"}, format="json"
    )

    message = Message.objects.get(pk=again.json()["message"])
    assert "line comment" not in message.body


def test_a_comment_review_is_recorded_and_sent_only_when_asked(api, change):
    comment(api, change)

    kept = api.post(f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "comment"}, format="json")
    sent = api.post(
        f"/api/v1/changes/{change.pk}/reviews/",
        {"verdict": "comment", "send": True},
        format="json",
    )

    assert kept.status_code == 201 and kept.json()["message"] is None
    assert sent.status_code == 201 and sent.json()["message"] is not None
    assert api.get(f"/api/v1/changes/{change.pk}/comments/?state=sent").json()["count"] == 1


def test_approve_is_recorded_and_listed(api, change):
    response = api.post(
        f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "approve"}, format="json"
    )

    assert response.status_code == 201
    listed = api.get(f"/api/v1/changes/{change.pk}/reviews/").json()["results"]
    assert [r["verdict"] for r in listed] == ["approve"]
    assert not Message.objects.filter(kind=MessageKind.REVIEW).exists()


def test_a_change_that_is_not_open_refuses_comments_and_reviews_with_409(api, change):
    change.status = ChangeStatus.MERGED
    change.save(update_fields=["status"])

    assert comment(api, change).status_code == 409
    review = api.post(
        f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "approve"}, format="json"
    )
    assert review.status_code == 409


def test_an_unknown_verdict_is_a_400(api, change):
    response = api.post(f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "lgtm"}, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "verdict"


def test_members_comment_and_review_viewers_read_only(change, member, viewer):
    as_member, as_viewer = api_client_for(member.user), api_client_for(viewer.user)

    assert comment(as_member, change).status_code == 201
    assert comment(as_viewer, change).status_code == 403
    assert (
        as_viewer.post(
            f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "approve"}, format="json"
        ).status_code
        == 403
    )
    [created] = as_viewer.get(f"/api/v1/changes/{change.pk}/comments/").json()["results"]
    resolve = as_viewer.patch(
        f"/api/v1/comments/{created['id']}/", {"state": "resolved"}, format="json"
    )
    assert resolve.status_code == 403


def test_another_teams_change_comment_and_artifact_are_404(api, change, other_team, tmp_path):
    spy = api_client_for(other_team["owner"].user)
    created = comment(api, change).json()
    artifact = artifact_put(team=change.team, name="plan.md", content="one\ntwo\n").artifact
    theirs, _ = open_change(
        team=other_team["team"], agent=other_team["agent"], tmp_path=tmp_path / "theirs",
        base_files={"a.txt": "a\n"}, files={"a.txt": "b\n"},
    )  # fmt: skip

    calls = [
        spy.get(f"/api/v1/changes/{change.pk}/comments/"),
        comment(spy, change),
        spy.get(f"/api/v1/changes/{change.pk}/reviews/"),
        spy.post(f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "approve"}, format="json"),
        spy.get(f"/api/v1/comments/{created['id']}/"),
        spy.patch(f"/api/v1/comments/{created['id']}/", {"state": "resolved"}, format="json"),
        spy.get(f"/api/v1/artifacts/{artifact.pk}/comments/"),
        spy.post(
            f"/api/v1/artifacts/{artifact.pk}/comments/", {"line": 1, "body": "x"}, format="json"
        ),
        spy.get(f"/api/v1/artifacts/{artifact.pk}/reviews/"),
        spy.post(
            f"/api/v1/artifacts/{artifact.pk}/reviews/", {"verdict": "approve"}, format="json"
        ),
        # ...and ours from their side: a reply to our comment on their change is no reply.
        spy.post(
            f"/api/v1/changes/{theirs.pk}/comments/",
            {"reply_to": created["id"], "body": "x"},
            format="json",
        ),
    ]

    assert [c.status_code for c in calls] == [404] * 10 + [400]


# -- artifacts -----------------------------------------------------------------------------


@pytest.fixture
def plan(team, agent, thread):
    return artifact_put(
        team=team, name="plan.md", content="# Plan\n\n1. parse\n2. add\n3. print\n",
        kind="plan", media_type="text/markdown", thread=thread, author_agent=agent,
    )  # fmt: skip


def test_an_artifact_line_comment_and_request_changes_reach_the_agent_that_wrote_it(
    api, plan, agent, thread
):
    artifact = plan.artifact
    created = api.post(
        f"/api/v1/artifacts/{artifact.pk}/comments/",
        {"version": 1, "line": 4, "body": "Subtract too."},
        format="json",
    )
    review = api.post(
        f"/api/v1/artifacts/{artifact.pk}/reviews/", {"verdict": "request_changes"}, format="json"
    )

    assert created.status_code == 201, created.json()
    assert "> 4 | 2. add" in created.json()["context"]
    assert review.status_code == 201
    message = Message.objects.get(pk=review.json()["message"])
    assert message.thread_id == thread.pk
    assert message.data["artifact_id"] == artifact.pk and message.data["version"] == 1
    assert "2. add" in message.body and "Subtract too." in message.body
    assert Delivery.objects.get(message=message).agent_id == agent.pk
    assert (
        api.get(f"/api/v1/artifacts/{artifact.pk}/comments/").json()["results"][0]["state"]
        == "sent"
    )


def test_an_artifact_line_past_its_end_is_a_400(api, plan):
    response = api.post(
        f"/api/v1/artifacts/{plan.artifact.pk}/comments/",
        {"line": 7, "body": "?"},
        format="json",
    )

    assert response.status_code == 400
    assert "has 5 lines" in response.json()["detail"]


def test_a_binary_artifact_has_no_lines_to_comment_on(api, team):
    version = artifact_put(team=team, name="logo.png", content=b"\x89PNG\0", media_type="image/png")

    response = api.post(
        f"/api/v1/artifacts/{version.artifact.pk}/comments/", {"line": 1, "body": "?"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert "not text" in response.json()["detail"]


def test_request_changes_on_a_version_a_person_wrote_is_a_409(api, team, owner):
    version = artifact_put(team=team, name="notes.txt", content="a\n", author_user=owner.user)

    response = api.post(
        f"/api/v1/artifacts/{version.artifact.pk}/reviews/",
        {"verdict": "request_changes"},
        format="json",
    )

    assert response.status_code == 409


def test_an_artifact_review_goes_to_the_author_of_that_version(api, team, thread):
    first, second = AgentFactory(team=team, handle="drafter"), AgentFactory(team=team, handle="b")
    artifact_put(team=team, name="r.md", content="a\n", thread=thread, author_agent=first)
    v2 = artifact_put(team=team, name="r.md", content="b\n", thread=thread, author_agent=second)

    response = api.post(
        f"/api/v1/artifacts/{v2.artifact.pk}/reviews/",
        {"verdict": "request_changes", "version": 1, "body": "Back to you"},
        format="json",
    )

    message = Message.objects.get(pk=response.json()["message"])
    assert Delivery.objects.get(message=message).agent_id == first.pk


def test_a_member_of_the_team_may_comment_on_artifacts_viewers_may_not(plan, viewer):
    MembershipFactory(team=plan.artifact.team)
    response = api_client_for(viewer.user).post(
        f"/api/v1/artifacts/{plan.artifact.pk}/comments/", {"line": 1, "body": "x"}, format="json"
    )

    assert response.status_code == 403
