"""Approvals without a harness: the service rules, the API, the card's buttons, the agent
settings, the live card update, and the executor's side (apps.runs.approvals_bridge)."""

from __future__ import annotations

import json
import threading

import pytest
from channels.db import database_sync_to_async
from django.db import close_old_connections, connection

from apps.agents.forms import AgentForm
from apps.agents.models import ApprovalPolicy, Harness
from apps.agents.services import agent_update
from apps.approvals import services, wakeups
from apps.approvals.models import Approval, ApprovalStatus
from apps.core import registry
from apps.core.errors import Conflict
from apps.harnesses import ClaudeAdapter
from apps.harnesses.base import PermissionRequest, ToolKind
from apps.runs.approvals_bridge import RunApprovals
from apps.runs.creation import NewRun, run_create
from apps.threads.models import Message, MessageKind
from tests.conftest import api_client_for, web_client_for, websocket
from tests.factories import AgentFactory, token_for

BASH = PermissionRequest(
    request_id="req-1",
    tool="Bash",
    kind=ToolKind.SHELL,
    input={"command": "touch x && echo hi"},
    command="touch x && echo hi",
)


def edit_request(path: str = "/workspace/a.py") -> PermissionRequest:
    return PermissionRequest(
        request_id="req-2",
        tool="Edit",
        kind=ToolKind.EDIT,
        input={"file_path": path, "old_string": "a = 1\n", "new_string": "a = 2\n"},
        file=path,
        diff="--- a\n+++ b\n-a = 1\n+a = 2\n",
    )


@pytest.fixture
def claude(team, owner):
    agent = AgentFactory(team=team, handle="claude", harness=Harness.CLAUDE)
    return agent_update(actor=owner, agent=agent, approval_policy=ApprovalPolicy.ASK)


@pytest.fixture
def run(claude, thread):
    return run_create(NewRun(agent=claude, prompt="go", thread=thread))


def ask(run, request: PermissionRequest = BASH, timeout_s: int = 600) -> Approval:
    return services.approval_create(
        team_id=run.team_id,
        run_id=run.pk,
        agent=run.agent,
        thread=run.thread,
        request=request,
        timeout_s=timeout_s,
    )


def decide(user, approval: Approval, **body):
    return api_client_for(user).post(f"/api/v1/approvals/{approval.pk}/", body, format="json")


# -- the service and the API ------------------------------------------------------------------


def test_a_request_posts_an_approval_card_and_publishes_the_event(
    run, thread, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(registry, "_event_handlers", [lambda *args: published.append(args)])
    with django_capture_on_commit_callbacks(execute=True):
        approval = ask(run)

    card = Message.objects.get(pk=approval.message_id)
    assert card.thread_id == thread.pk and card.kind == MessageKind.APPROVAL
    assert card.run_id == run.pk and card.author_agent_id == run.agent_id
    assert card.data["approval"] == approval.pk and card.data["status"] == "pending"
    assert card.data["command"] == "touch x && echo hi"
    [(event, team_id, data)] = published
    assert (event, team_id) == ("approval.requested", run.team_id)
    assert data["id"] == approval.pk and data["status"] == "pending"


def test_the_api_lists_approvals_with_the_issue_fields_and_filters(
    owner, run, claude, thread, other_team
):
    first = ask(run)
    second = ask(run, edit_request())
    services.approval_decide(actor=owner, approval=second, decision="deny")
    other_run = run_create(
        NewRun(agent=other_team["agent"], prompt="x", thread=other_team["thread"])
    )
    ask(other_run)
    client = api_client_for(owner.user)

    page = client.get("/api/v1/approvals/").json()
    assert [a["id"] for a in page["results"]] == [second.pk, first.pk]
    item = page["results"][1]
    assert set(item) == {
        "id", "team", "run", "agent", "thread", "message", "tool", "input", "status",
        "decided_by", "reason", "created_at", "decided_at",
    }  # fmt: skip
    assert item["tool"] == "Bash" and item["input"] == {"command": "touch x && echo hi"}
    assert (item["team"], item["run"], item["thread"]) == (run.team_id, run.pk, thread.pk)
    pending = client.get("/api/v1/approvals/?status=pending").json()["results"]
    assert [a["id"] for a in pending] == [first.pk]
    assert client.get(f"/api/v1/approvals/?run={run.pk}").json()["count"] == 2
    assert client.get(f"/api/v1/approvals/?team={other_team['team'].pk}").json()["count"] == 0
    assert client.get("/api/v1/approvals/?status=maybe").status_code == 400


def test_members_answer_viewers_get_403_other_teams_404_and_a_second_answer_409(
    owner, member, viewer, run, other_team
):
    approval = ask(run)
    assert decide(viewer.user, approval, decision="approve").status_code == 403
    assert decide(other_team["owner"].user, approval, decision="approve").status_code == 404
    assert decide(member.user, approval, decision="maybe").status_code == 400

    response = decide(member.user, approval, decision="approve", reason="looks fine")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["decided_by"] == member.user.pk
    assert body["reason"] == "looks fine" and body["decided_at"]

    again = decide(owner.user, approval, decision="deny")
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == member.user


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_answers_at_the_same_moment_only_one_wins(owner, member, run):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's test database takes one writer at a time: no race to lose")
    approval = ask(run)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def answer(actor, decision):
        try:
            barrier.wait()
            services.approval_decide(
                actor=actor, approval=Approval.objects.get(pk=approval.pk), decision=decision
            )
            outcomes.append(decision)
        except Conflict:
            outcomes.append("conflict")
        finally:
            close_old_connections()

    threads = [
        threading.Thread(target=answer, args=(owner, "approve")),
        threading.Thread(target=answer, args=(member, "deny")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(outcomes) == 2 and outcomes.count("conflict") == 1
    [winner] = [o for o in outcomes if o != "conflict"]
    approval.refresh_from_db()
    assert approval.status == {"approve": "approved", "deny": "denied"}[winner]


def test_an_answer_wakes_the_runs_executor(owner, run, django_capture_on_commit_callbacks):
    approval = ask(run)
    woken = threading.Event()
    with (
        wakeups.Subscription(run.pk, woken.set),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.approval_decide(actor=owner, approval=approval, decision="approve")
    assert woken.is_set()


# -- the agent's settings ----------------------------------------------------------------------


@pytest.mark.parametrize("harness", [Harness.GEMINI, Harness.OPENCODE, Harness.COMMAND])
def test_harnesses_that_cannot_ask_refuse_ask_in_the_api(owner, team, harness):
    client = api_client_for(owner.user)
    body = {"handle": "h", "harness": harness, "approval_policy": "ask", "command": "true"}
    response = client.post(f"/api/v1/teams/{team.pk}/agents/", body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "approval_policy"
    assert "cannot ask" in response.json()["detail"]


def test_claude_and_codex_take_ask_in_the_api_and_the_form(owner, team):
    client = api_client_for(owner.user)
    body = {"handle": "c", "harness": "codex", "approval_policy": "ask_writes",
            "approval_timeout_s": 30}  # fmt: skip
    response = client.post(f"/api/v1/teams/{team.pk}/agents/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["approval_policy"] == "ask_writes"
    assert response.json()["approval_timeout_s"] == 30

    web = web_client_for(owner.user)
    # The form as it comes (its initial values), for a Gemini agent that should ask.
    form = {name: f.initial for name, f in AgentForm().fields.items() if f.initial is not None}
    form.update(handle="g", harness="gemini", approval_policy="ask")
    page = web.post(f"/teams/{team.pk}/agents/new/", form)
    assert page.status_code == 200
    assert "cannot ask before a tool call" in page.content.decode()


# -- the card's buttons and the live update ----------------------------------------------------


def test_the_card_shows_the_command_and_its_buttons_answer(owner, viewer, run, thread):
    approval = ask(run)
    page = web_client_for(owner.user).get(f"/threads/{thread.pk}/").content.decode()
    assert f'id="approval-{approval.pk}"' in page and "touch x &amp;&amp; echo hi" in page
    assert "Approve all like this for this run" in page

    url = f"/approvals/{approval.pk}/decide/"
    assert web_client_for(viewer.user).post(url, {"decision": "approve"}).status_code == 403
    response = web_client_for(owner.user).post(url, {"decision": "approve_all"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Approved, with all like this for this run" in html and "Approve</button>" not in html
    approval.refresh_from_db()
    assert approval.approve_similar and approval.status == ApprovalStatus.APPROVED


def test_an_edit_card_shows_the_file_and_its_diff(owner, run, thread):
    ask(run, edit_request())
    page = web_client_for(owner.user).get(f"/threads/{thread.pk}/").content.decode()
    assert "/workspace/a.py" in page and "+a = 2" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
async def test_an_answer_updates_the_card_for_api_clients_live(owner, run, thread):
    approval = await database_sync_to_async(ask)(run)
    token = await database_sync_to_async(token_for)(owner.user)
    card = await database_sync_to_async(Message.objects.get)(pk=approval.message_id)
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/?since={card.seq - 1}", token=token)
    await communicator.connect()
    created = json.loads(await communicator.receive_from(timeout=2))
    assert created["type"] == "message.created" and created["message"]["kind"] == "approval"

    await database_sync_to_async(services.approval_decide)(
        actor=owner, approval=approval, decision="deny", reason="no"
    )
    updated = json.loads(await communicator.receive_from(timeout=2))
    assert updated["type"] == "message.updated"
    assert updated["message"]["id"] == approval.message_id
    assert updated["message"]["data"]["status"] == "denied"
    await communicator.disconnect()


# -- the executor's side ----------------------------------------------------------------------


class Harness_:
    """What the bridge writes to the harness's stdin."""

    def __init__(self) -> None:
        self.adapter = ClaudeAdapter()
        self.written: list[dict] = []

    def write(self, data: bytes) -> None:
        self.written.append(json.loads(data))

    def answers(self) -> list[tuple[str, str]]:
        return [
            (w["response"]["request_id"], w["response"]["response"]["behavior"])
            for w in self.written
        ]


def bridge(run, harness: Harness_) -> RunApprovals:
    return RunApprovals(
        run, adapter=lambda: harness.adapter, write=harness.write, wake=lambda: None
    )


def test_ask_writes_lets_reads_run_and_asks_for_commands(owner, run):
    agent_update(actor=owner, agent=run.agent, approval_policy=ApprovalPolicy.ASK_WRITES)
    run.agent.refresh_from_db()
    harness = Harness_()
    read = PermissionRequest(
        request_id="r", tool="Read", kind=ToolKind.READ, input={"file_path": "/etc/hosts"}
    )
    with bridge(run, harness) as approvals:
        approvals.handle([read, BASH])
        assert harness.answers() == [("r", "allow")]
        [approval] = Approval.objects.filter(run=run)
        assert approval.tool == "Bash" and approval.status == ApprovalStatus.PENDING

        services.approval_decide(actor=owner, approval=approval, decision="deny", reason="no")
        approvals.check()
    assert harness.answers() == [("r", "allow"), ("req-1", "deny")]
    assert "no" in harness.written[-1]["response"]["response"]["message"]


def test_approve_all_like_this_covers_the_same_program_for_the_run(owner, run):
    harness = Harness_()
    with bridge(run, harness) as approvals:
        approvals.handle([BASH])
        first = Approval.objects.get(run=run)
        services.approval_decide(
            actor=owner, approval=first, decision="approve", all_like_this=True
        )
        approvals.check()
        other = PermissionRequest(
            request_id="req-3", tool="Bash", kind=ToolKind.SHELL,
            input={"command": "touch y"}, command="touch y",
        )  # fmt: skip
        approvals.handle([other])
        unlike = PermissionRequest(
            request_id="req-4", tool="Bash", kind=ToolKind.SHELL,
            input={"command": "rm -rf y"}, command="rm -rf y",
        )  # fmt: skip
        approvals.handle([unlike])
        assert harness.answers() == [("req-1", "allow"), ("req-3", "allow")]
        by_rule = Approval.objects.get(request_id="req-3")
        assert by_rule.rule == first and by_rule.status == ApprovalStatus.APPROVED
        assert by_rule.message_id is None
        assert Approval.objects.get(request_id="req-4").status == ApprovalStatus.PENDING
    # The run ended with one still open: it expired, and the harness is gone.
    assert Approval.objects.get(request_id="req-4").status == ApprovalStatus.EXPIRED


def test_an_overdue_approval_expires_as_a_visible_deny(owner, run):
    harness = Harness_()
    with bridge(run, harness) as approvals:
        approvals.handle([BASH])
        approval = Approval.objects.get(run=run)
        Approval.objects.filter(pk=approval.pk).update(expires_at=approval.created_at)
        approvals.check()
    assert harness.answers() == [("req-1", "deny")]
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.EXPIRED
    card = Message.objects.get(pk=approval.message_id)
    assert card.data["status"] == "expired" and "No answer within" in card.data["reason"]


@pytest.mark.django_db
def test_a_run_ended_without_its_executor_leaves_no_approval_waiting(
    owner, run, django_capture_on_commit_callbacks
):
    # As the reconciler does for a run whose worker died: a transition, no executor clean-up.
    from apps.runs.models import RunStatus
    from apps.runs.transitions import run_transition

    approval = ask(run)
    with django_capture_on_commit_callbacks(execute=True):
        run_transition(
            run=run, from_statuses=[RunStatus.QUEUED], to=RunStatus.FAILED, error="worker died"
        )

    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.EXPIRED
    assert "The run ended (failed)" in approval.reason


def test_secrets_are_masked_in_the_approval_but_the_harness_gets_its_own_input(owner, run):
    from apps.runs.masking import SecretMask

    harness = Harness_()
    secret = "sk-live-0123456789abcdef"
    request = PermissionRequest(
        request_id="req-9", tool="Bash", kind=ToolKind.SHELL,
        input={"command": f"curl -H 'key: {secret}' x"}, command=f"curl -H 'key: {secret}' x",
    )  # fmt: skip
    approvals = RunApprovals(
        run, adapter=lambda: harness.adapter, write=harness.write, wake=lambda: None,
        mask_text=SecretMask([secret]).text,
    )  # fmt: skip
    with approvals:
        approvals.handle([request])
        approval = Approval.objects.get(run=run)
        services.approval_decide(actor=owner, approval=approval, decision="approve")
        approvals.check()
    card = Message.objects.get(pk=approval.message_id)
    assert secret not in json.dumps(approval.input) + json.dumps(card.data) + card.body
    assert harness.written[0]["response"]["response"]["updatedInput"] == request.input
