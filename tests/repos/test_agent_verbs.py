"""The agent verbs of changes: list_changes, get_change (with its diff) and get_review_comments,
on the REST door `oz` calls (the MCP door serves the same table: tests/agentapi)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.repos.models import ReviewComment
from apps.repos.services import repo_create
from apps.runs.creation import NewRun, run_create
from apps.runs.tokens import token_issue
from tests.repos.conftest import make_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def door(agent, thread) -> APIClient:
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(run=run)}")
    return client


def call(door: APIClient, verb: str, data: dict) -> tuple[int, dict]:
    response = door.post(f"/api/v1/agent/{verb}/", data, format="json")
    return response.status_code, response.json()


def test_an_agent_reads_changes_their_diff_and_comments(door, owner, repo, agent):
    change = make_change(repo, agent)
    ReviewComment.objects.create(
        team=repo.team, change=change, version=1, path="calc.py", line=1, body="why 5?",
        context="a = 5", author=owner.user,
    )  # fmt: skip

    status, listed = call(door, "list_changes", {})
    assert status == 200 and [c["id"] for c in listed["changes"]] == [change.pk]
    assert listed["changes"][0]["files"][0]["path"] == "calc.py"
    assert call(door, "list_changes", {"status": "merged"})[1] == {"changes": []}
    assert [c["id"] for c in call(door, "list_changes", {"mine": True})[1]["changes"]] == [
        change.pk
    ]

    status, found = call(door, "get_change", {"change_id": change.pk})
    assert status == 200 and found["branch"] == "feature" and found["agent"] == agent.handle
    assert "-a = 1\n+a = 5\n" in found["diff"] and found["diff_truncated"] is False
    assert call(door, "get_change", {"change_id": change.pk, "version": 2})[0] == 404

    status, comments = call(door, "get_review_comments", {"change_id": change.pk})
    assert status == 200
    [comment] = comments["comments"]
    assert (comment["path"], comment["line"], comment["body"], comment["state"]) == (
        "calc.py", 1, "why 5?", "pending",
    )  # fmt: skip
    assert comment["author"] == owner.user.username
    assert call(door, "get_review_comments", {})[0] == 400
    assert call(door, "get_review_comments", {"change_id": change.pk, "state": "sent"})[1] == {
        "comments": []
    }


def test_another_teams_change_is_not_found(door, other_team, commit_files):
    theirs = repo_create(actor=other_team["owner"], name="secret")
    commit_files(theirs, {"calc.py": "a = 1\n"})
    change = make_change(theirs, other_team["agent"])
    assert call(door, "list_changes", {"status": "all"})[1] == {"changes": []}
    assert call(door, "get_change", {"change_id": change.pk})[0] == 404
    assert call(door, "get_review_comments", {"change_id": change.pk})[0] == 404
