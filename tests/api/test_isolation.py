"""Another team's rows do not exist for you: every endpoint answers 404 (never 403), leaks
nothing, and changes nothing. The table below must name every route of the API."""

import json
from collections import defaultdict

import pytest
from django.urls import get_resolver

from apps.agents.models import Agent
from apps.approvals.models import Approval
from apps.approvals.services import approval_create
from apps.artifacts.models import ArtifactVersion, MemoryNote
from apps.artifacts.services import artifact_put, memory_set
from apps.automations.models import Schedule, Trigger
from apps.harnesses.base import PermissionRequest, ToolKind
from apps.notifications.models import Notification, Webhook
from apps.providers.models import Provider
from apps.repos.models import Change, ChangeVersion, Repository, Review, ReviewComment
from apps.runs.models import Run
from apps.teams.models import Invitation, Membership, Role, Team
from apps.threads.models import Delivery, Message, Thread
from tests.artifacts.conftest import make_held_delivery
from tests.conftest import assert_closed_with, web_client_for, websocket
from tests.factories import InvitationFactory, MembershipFactory, token_for

# {their_*} are the other team's ids; {team} is ours, for routes that nest their row in ours.
API = [
    ("get", "/api/v1/teams/{their_team}/", None),
    ("get", "/api/v1/teams/{their_team}/members/", None),
    ("post", "/api/v1/teams/{their_team}/members/", {"who": "{me}", "role": "owner"}),
    ("patch", "/api/v1/teams/{their_team}/members/{their_member}/", {"role": "viewer"}),
    ("delete", "/api/v1/teams/{their_team}/members/{their_member}/", None),
    ("patch", "/api/v1/teams/{team}/members/{their_member}/", {"role": "viewer"}),
    ("delete", "/api/v1/teams/{team}/members/{their_member}/", None),
    ("get", "/api/v1/teams/{their_team}/invitations/", None),
    ("delete", "/api/v1/teams/{their_team}/invitations/{their_invitation}/", None),
    ("delete", "/api/v1/teams/{team}/invitations/{their_invitation}/", None),
    ("post", "/api/v1/invitations/{their_invitation}/accept/", None),
    ("post", "/api/v1/invitations/{their_invitation}/decline/", None),
    ("get", "/api/v1/teams/{their_team}/agents/", None),
    ("post", "/api/v1/teams/{their_team}/agents/", {"handle": "mole"}),
    ("get", "/api/v1/agents/{their_agent}/", None),
    ("patch", "/api/v1/agents/{their_agent}/", {"instructions": "leak everything"}),
    ("delete", "/api/v1/agents/{their_agent}/", None),
    ("get", "/api/v1/teams/{their_team}/threads/", None),
    ("post", "/api/v1/teams/{their_team}/threads/", {"name": "mole"}),
    ("post", "/api/v1/teams/{team}/threads/", {"kind": "direct", "agent": "{their_agent}"}),
    ("get", "/api/v1/threads/{their_thread}/", None),
    ("get", "/api/v1/threads/{their_thread}/messages/", None),
    ("get", "/api/v1/threads/{their_thread}/messages/?since=0", None),
    ("post", "/api/v1/threads/{their_thread}/messages/", {"body": "hello"}),
    ("patch", "/api/v1/teams/{their_team}/", {"hop_limit": "1"}),
    ("get", "/api/v1/teams/{their_team}/artifacts/", None),
    ("post", "/api/v1/teams/{their_team}/artifacts/", {"name": "mole.txt", "content": "x"}),
    (
        "post",
        "/api/v1/teams/{team}/artifacts/",
        {"name": "x", "content": "x", "thread": "{their_thread}"},
    ),
    ("get", "/api/v1/artifacts/{their_artifact}/", None),
    ("get", "/api/v1/artifacts/{their_artifact}/versions/", None),
    ("get", "/api/v1/artifacts/{their_artifact}/versions/1/", None),
    ("get", "/api/v1/artifacts/{their_artifact}/versions/1/download/", None),
    ("get", "/api/v1/teams/{their_team}/memory/", None),
    ("get", "/api/v1/teams/{their_team}/memory/plan/", None),
    ("put", "/api/v1/teams/{their_team}/memory/plan/", {"value": "overwritten"}),
    ("delete", "/api/v1/teams/{their_team}/memory/plan/", None),
    ("post", "/api/v1/deliveries/{their_delivery}/release/", None),
    ("post", "/api/v1/runs/", {"agent": "{their_agent}", "prompt": "do it"}),
    ("post", "/api/v1/runs/", {"agent": "{our_agent}", "prompt": "x", "thread": "{their_thread}"}),
    ("get", "/api/v1/runs/{their_run}/", None),
    ("post", "/api/v1/runs/{their_run}/cancel/", None),
    ("post", "/api/v1/runs/{their_run}/messages/", {"body": "steer"}),
    ("get", "/api/v1/runs/{their_run}/events/", None),
    ("post", "/api/v1/teams/{their_team}/demo/", {"harness": "offline"}),
    ("get", "/api/v1/teams/{their_team}/providers/", None),
    (
        "post",
        "/api/v1/teams/{their_team}/providers/",
        {"name": "m", "kind": "openai", "base_url": "http://127.0.0.1:9", "api_key": "k"},
    ),
    ("get", "/api/v1/providers/{their_provider}/", None),
    ("patch", "/api/v1/providers/{their_provider}/", {"base_url": "http://127.0.0.1:10"}),
    ("delete", "/api/v1/providers/{their_provider}/", None),
    ("get", "/api/v1/teams/{their_team}/usage/", None),
    ("post", "/api/v1/runs/{their_run}/budget/raise/", {"value": "5"}),
    ("get", "/api/v1/approvals/{their_approval}/", None),
    ("post", "/api/v1/approvals/{their_approval}/", {"decision": "approve"}),
    # Notifications are the user's own: another user's is as absent as another team's row.
    ("post", "/api/v1/notifications/{their_notification}/read/", None),
    ("get", "/api/v1/teams/{their_team}/webhooks/", None),
    ("post", "/api/v1/teams/{their_team}/webhooks/", {"url": "http://127.0.0.1:9/"}),
    ("get", "/api/v1/webhooks/{their_webhook}/", None),
    ("patch", "/api/v1/webhooks/{their_webhook}/", {"url": "http://127.0.0.1:10/"}),
    ("delete", "/api/v1/webhooks/{their_webhook}/", None),
    ("get", "/api/v1/webhooks/{their_webhook}/deliveries/", None),
    ("get", "/api/v1/teams/{their_team}/repos/", None),
    ("post", "/api/v1/teams/{their_team}/repos/", {"name": "mole"}),
    ("get", "/api/v1/repos/{their_repo}/", None),
    ("get", "/api/v1/changes/?team={their_team}", None),
    ("get", "/api/v1/changes/{their_change}/", None),
    ("get", "/api/v1/changes/{their_change}/diff/", None),
    ("get", "/api/v1/changes/{their_change}/versions/", None),
    ("post", "/api/v1/changes/{their_change}/merge/", None),
    ("post", "/api/v1/changes/{their_change}/send-conflict/", None),
    ("post", "/api/v1/changes/{their_change}/close/", None),
    ("get", "/api/v1/changes/{their_change}/comments/", None),
    ("post", "/api/v1/changes/{their_change}/comments/", {"path": "a", "line": "1", "body": "x"}),
    ("get", "/api/v1/changes/{their_change}/reviews/", None),
    ("post", "/api/v1/changes/{their_change}/reviews/", {"verdict": "request_changes"}),
    ("get", "/api/v1/artifacts/{their_artifact}/comments/", None),
    ("post", "/api/v1/artifacts/{their_artifact}/comments/", {"line": "1", "body": "x"}),
    ("get", "/api/v1/artifacts/{their_artifact}/reviews/", None),
    ("post", "/api/v1/artifacts/{their_artifact}/reviews/", {"verdict": "approve"}),
    ("get", "/api/v1/teams/{their_team}/schedules/", None),
    (
        "post",
        "/api/v1/teams/{their_team}/schedules/",
        {"agent": "{our_agent}", "cron": "* * * * *", "prompt": "x"},
    ),
    ("get", "/api/v1/schedules/{their_schedule}/", None),
    ("patch", "/api/v1/schedules/{their_schedule}/", {"prompt": "leak everything"}),
    ("delete", "/api/v1/schedules/{their_schedule}/", None),
    ("get", "/api/v1/schedules/{their_schedule}/firings/", None),
    ("get", "/api/v1/teams/{their_team}/triggers/", None),
    (
        "post",
        "/api/v1/teams/{their_team}/triggers/",
        {"agent": "{our_agent}", "thread": "{thread}", "template": "x"},
    ),
    ("get", "/api/v1/triggers/{their_trigger}/", None),
    ("patch", "/api/v1/triggers/{their_trigger}/", {"template": "leak everything"}),
    ("delete", "/api/v1/triggers/{their_trigger}/", None),
    ("get", "/api/v1/triggers/{their_trigger}/calls/", None),
    ("get", "/api/v1/comments/{their_comment}/", None),
    ("patch", "/api/v1/comments/{their_comment}/", {"state": "resolved"}),
]
# Routes with nothing of another team's to name (lists of your own, the schema and docs).
NOT_ADDRESSED_BY_ID = {"teams", "runs", "invitations", "schema", "docs", "redoc"}
NOT_ADDRESSED_BY_ID |= {"notifications", "notifications-read-all"}
NOT_ADDRESSED_BY_ID |= {"approvals"}  # filtered to your teams: another team's is no match

PAGES = [
    ("get", "/teams/{their_team}/"),
    ("get", "/teams/{their_team}/members/"),
    ("post", "/teams/{their_team}/members/"),
    ("post", "/teams/{their_team}/members/{their_member}/role/"),
    ("post", "/teams/{their_team}/members/{their_member}/remove/"),
    ("post", "/teams/{team}/members/{their_member}/role/"),
    ("post", "/teams/{team}/members/{their_member}/remove/"),
    ("post", "/teams/{their_team}/invitations/{their_invitation}/revoke/"),
    ("post", "/teams/{team}/invitations/{their_invitation}/revoke/"),
    ("post", "/invitations/{their_invitation}/accept/"),
    ("post", "/invitations/{their_invitation}/decline/"),
    ("get", "/teams/{their_team}/agents/"),
    ("get", "/teams/{their_team}/agents/new/"),
    ("post", "/teams/{their_team}/agents/new/"),
    ("get", "/agents/{their_agent}/"),
    ("get", "/agents/{their_agent}/edit/"),
    ("post", "/agents/{their_agent}/edit/"),
    ("get", "/agents/{their_agent}/archive/"),
    ("post", "/agents/{their_agent}/archive/"),
    ("post", "/agents/{their_agent}/direct/"),
    ("get", "/teams/{their_team}/threads/new/"),
    ("post", "/teams/{their_team}/threads/new/"),
    ("get", "/threads/{their_thread}/"),
    ("get", "/threads/{their_thread}/older/?before=5"),
    ("get", "/threads/{their_thread}/older/"),
    ("post", "/threads/{their_thread}/messages/"),
    ("get", "/runs/{their_run}/"),
    ("post", "/runs/{their_run}/cancel/"),
    ("post", "/runs/{their_run}/reply/"),
    ("post", "/agents/{their_agent}/run/"),
    ("post", "/teams/{their_team}/settings/"),
    ("get", "/teams/{their_team}/artifacts/"),
    ("get", "/artifacts/{their_artifact}/"),
    ("get", "/teams/{their_team}/memory/"),
    ("post", "/teams/{their_team}/memory/save/"),
    ("post", "/teams/{their_team}/memory/delete/"),
    ("post", "/threads/{their_thread}/deliveries/{their_delivery}/release/"),
    ("post", "/threads/{thread}/deliveries/{their_delivery}/release/"),
    ("post", "/approvals/{their_approval}/decide/"),
    ("post", "/teams/{their_team}/demo/"),
    ("post", "/notifications/{their_notification}/open/"),
    ("post", "/notifications/{their_notification}/read/"),
    ("get", "/teams/{their_team}/webhooks/"),
    ("post", "/teams/{their_team}/webhooks/"),
    ("get", "/webhooks/{their_webhook}/"),
    ("post", "/webhooks/{their_webhook}/delete/"),
    ("get", "/changes/{their_change}/"),
    ("post", "/changes/{their_change}/comment/"),
    ("post", "/changes/{their_change}/review/"),
    ("post", "/changes/{their_change}/merge/"),
    ("post", "/changes/{their_change}/close/"),
    ("post", "/changes/{their_change}/send-conflict/"),
    ("post", "/review-comments/{their_comment}/resolve/"),
    ("get", "/artifacts/{their_artifact}/review/"),
    ("post", "/artifacts/{their_artifact}/review/comment/"),
    ("post", "/artifacts/{their_artifact}/review/submit/"),
    ("get", "/teams/{their_team}/changes/"),
    ("get", "/teams/{their_team}/schedules/"),
    ("get", "/teams/{their_team}/schedules/new/"),
    ("get", "/schedules/{their_schedule}/"),
    ("get", "/schedules/{their_schedule}/edit/"),
    ("post", "/schedules/{their_schedule}/delete/"),
    ("get", "/teams/{their_team}/triggers/"),
    ("get", "/teams/{their_team}/triggers/new/"),
    ("get", "/triggers/{their_trigger}/"),
    ("get", "/triggers/{their_trigger}/edit/"),
    ("post", "/triggers/{their_trigger}/delete/"),
    ("get", "/threads/{their_thread}/changes/"),
]

# A form that every POST route above would accept, were the row ours.
FORM = {
    "body": "hi", "role": "viewer", "who": "x", "handle": "mole", "name": "mole", "prompt": "x",
    "key": "plan", "value": "overwritten", "hop_limit": 1,
}  # fmt: skip

SOCKETS = [
    "/ws/v1/threads/{their_thread}/",
    "/ws/threads/{their_thread}/",
    "/ws/teams/{their_team}/",
    "/ws/changes/{their_change}/",
    "/ws/artifacts/{their_artifact}/review/",
]


@pytest.fixture
def world(owner, agent, thread, other_team):
    """Ids for the paths, and a snapshot of the other team's rows to compare afterwards."""
    their_member = MembershipFactory(team=other_team["team"], role=Role.MEMBER)
    # Addressed to someone else: another user's invitation is as absent as another team's row.
    their_invitation = InvitationFactory(team=other_team["team"], invitee="their-friend")
    their_artifact = artifact_put(
        team=other_team["team"], name="plan.md", content="the secret plan", kind="plan"
    ).artifact
    memory_set(team=other_team["team"], key="plan", value="the secret plan")
    their_delivery = make_held_delivery(thread=other_team["thread"], agent=other_team["agent"])
    their_run = Run.objects.create(
        team=other_team["team"],
        agent=other_team["agent"],
        thread=other_team["thread"],
        prompt="the secret plan",
        harness=other_team["agent"].harness,
    )
    their_webhook = Webhook.objects.create(
        team=other_team["team"], url="http://127.0.0.1:9/", events=["run.finished"]
    )
    their_notification = Notification.objects.create(
        user=other_team["owner"].user, team=other_team["team"], kind="mention", title="psst"
    )
    their_provider = Provider.objects.create(
        team=other_team["team"], name="theirs", kind="openai", base_url="http://127.0.0.1:9"
    )
    their_repo = Repository.objects.create(team=other_team["team"], name="secret")
    their_change = Change.objects.create(
        team=other_team["team"], repo=their_repo, title="the secret plan", branch="b", base="main",
        head="0" * 40, agent=other_team["agent"], thread=other_team["thread"],
    )  # fmt: skip
    ChangeVersion.objects.create(change=their_change, number=1, head="0" * 40, base_sha="0" * 40)
    their_comment = ReviewComment.objects.create(
        team=other_team["team"], change=their_change, version=1, path="a", line=1,
        body="the secret plan",
    )  # fmt: skip
    their_schedule = Schedule.objects.create(
        team=other_team["team"], agent=other_team["agent"], thread=other_team["thread"],
        cron="0 9 * * *", prompt="the secret plan",
    )  # fmt: skip
    their_trigger = Trigger.objects.create(
        team=other_team["team"], agent=other_team["agent"], thread=other_team["thread"],
        template="the secret plan", token_hash="f" * 64,
    )  # fmt: skip
    their_approval = approval_create(
        team_id=other_team["team"].pk, run_id=their_run.pk, agent=other_team["agent"],
        thread=other_team["thread"], timeout_s=600,
        request=PermissionRequest(
            request_id="1", tool="Bash", kind=ToolKind.SHELL, input={"command": "touch x"}
        ),
    )  # fmt: skip
    return {
        "their_schedule": their_schedule.pk,
        "their_trigger": their_trigger.pk,
        "their_approval": their_approval.pk,
        "their_provider": their_provider.pk,
        "their_repo": their_repo.pk,
        "their_change": their_change.pk,
        "their_comment": their_comment.pk,
        "me": owner.user.username,
        "their_webhook": their_webhook.pk,
        "their_notification": their_notification.pk,
        "team": owner.team_id,
        "our_agent": agent.pk,
        "their_team": other_team["team"].pk,
        "their_member": their_member.pk,
        "their_invitation": their_invitation.pk,
        "their_agent": other_team["agent"].pk,
        "their_thread": other_team["thread"].pk,
        "their_run": their_run.pk,
        "their_artifact": their_artifact.pk,
        "their_delivery": their_delivery.pk,
        "thread": thread.pk,
    }


def fill(template, ids):
    """Put ids into a path or payload; a payload value "{name}" becomes the id itself."""
    if template is None:
        return None
    if isinstance(template, dict):
        return {key: fill(value, ids) for key, value in template.items()}
    if template.startswith("{") and template.endswith("}"):
        return ids[template[1:-1]]
    return template.format(**ids)


def their_state(other_team) -> dict:
    team = other_team["team"]
    return {
        "members": sorted(Membership.objects.filter(team=team).values_list("user_id", "role")),
        "invitations": list(Invitation.objects.filter(team=team).values()),
        "agents": list(Agent.objects.filter(team=team).values()),
        "threads": list(Thread.objects.filter(team=team).values()),
        "messages": Message.objects.filter(thread__team=team).count(),
        "approvals": list(Approval.objects.filter(team=team).values()),
        "runs": list(Run.objects.filter(team=team).values("id", "status", "cancel_requested")),
        "team": list(Team.objects.filter(pk=team.pk).values("name", "hop_limit")),
        "artifacts": list(ArtifactVersion.objects.filter(artifact__team=team).values()),
        "memory": list(MemoryNote.objects.filter(team=team).values("key", "value")),
        "deliveries": list(
            Delivery.objects.filter(agent__team=team).values("id", "held", "state", "reason")
        ),
        "providers": list(Provider.objects.filter(team=team).values()),
        "webhooks": list(Webhook.objects.filter(team=team).values()),
        "notifications": list(Notification.objects.filter(team=team).values()),
        "repos": list(Repository.objects.filter(team=team).values()),
        "changes": list(Change.objects.filter(team=team).values()),
        "comments": list(ReviewComment.objects.filter(team=team).values()),
        "reviews": list(Review.objects.filter(team=team).values()),
        "schedules": list(Schedule.objects.filter(team=team).values()),
        "triggers": list(Trigger.objects.filter(team=team).values()),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "payload"), API)
def test_api_answers_404_for_another_teams_rows(api, world, other_team, method, path, payload):
    before = their_state(other_team)

    response = getattr(api, method)(fill(path, world), fill(payload, world), format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert their_state(other_team) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/v1/runs/?thread={their_thread}", "/api/v1/runs/?agent={their_agent}"]
)
def test_filtered_lists_of_another_teams_rows_are_empty(api, world, path):
    response = api.get(path.format(**world))

    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.django_db
def test_our_lists_hold_nothing_of_theirs(api, world, team):
    for path in [
        "/api/v1/teams/",
        f"/api/v1/teams/{team.pk}/agents/",
        f"/api/v1/teams/{team.pk}/threads/",
        "/api/v1/runs/",
        f"/api/v1/teams/{team.pk}/artifacts/",
        f"/api/v1/teams/{team.pk}/memory/",
        f"/api/v1/teams/{team.pk}/invitations/",
        "/api/v1/invitations/",
    ]:
        text = json.dumps(api.get(path).json())
        assert '"secret"' not in text  # their thread's name
        assert "the secret plan" not in text  # their run's prompt
        assert '"spy"' not in text  # their agent's handle
        assert "their-friend" not in text  # their invitation's invitee


def test_the_isolation_table_names_every_api_route():
    resolver = get_resolver()
    [api] = [p for p in resolver.url_patterns if getattr(p, "namespace", None) == "api"]
    any_ids = defaultdict(lambda: 1)
    covered = {
        resolver.resolve(path.format_map(any_ids).split("?")[0]).url_name for _, path, _ in API
    }

    assert {p.name for p in api.url_patterns} - NOT_ADDRESSED_BY_ID - covered == set()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), PAGES)
def test_pages_answer_404_for_another_teams_rows(owner, world, other_team, method, path):
    client = web_client_for(owner.user)
    before = their_state(other_team)

    response = getattr(client, method)(path.format(**world), FORM if method == "post" else None)

    assert response.status_code == 404
    assert their_state(other_team) == before


@pytest.fixture
def owner_token(owner) -> str:
    return token_for(owner.user)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
@pytest.mark.parametrize("path", SOCKETS)
async def test_websockets_close_with_4404_for_another_teams_rows(world, owner_token, path):
    communicator = websocket(path.format(**world), token=owner_token)

    await assert_closed_with(communicator, 4404)
