"""The MCP server, through the official SDK client against a live daphne: every tool, its effect
in the database, and every refusal (no token, a bad one, an expired one, a human's, another
team's ids)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import httpx2
import pytest
from django.db import connection
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from apps.agentapi.verbs import VERBS
from apps.artifacts.models import ArtifactVersion, MemoryNote
from apps.runs.models import Run, RunStatus
from apps.threads.models import Delivery, DeliveryState, Message
from apps.threads.services import message_post
from tests.agentapi.conftest import McpCaller, World, finish, start_run
from tests.factories import ThreadFactory, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


# -- the server and its tools ------------------------------------------------------------------


def test_the_server_is_ozweb_and_offers_every_verb_with_the_services_arguments(world: World):
    mcp = world.mcp()

    tools = {tool.name: tool for tool in mcp.tools()}

    assert mcp.server_name() == "ozweb"
    assert set(tools) == set(VERBS)
    for name, service in VERBS.items():
        expected = [p for p in inspect.signature(service).parameters if p != "ctx"]
        assert list(tools[name].input_schema.get("properties", {})) == expected, name
        assert tools[name].description


def test_mcp_answers_without_the_trailing_slash_too(world: World):
    assert McpCaller(f"{world.url}/mcp", world.token).ok("whoami")["handle"] == "coder"


def test_the_sdk_client_in_its_default_mode_works_too(world: World):
    async def whoami() -> dict:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {world.token}"}) as http,
            Client(streamable_http_client(world.mcp_url, http_client=http)) as client,
        ):
            return (await client.call_tool("whoami", {})).structured_content

    assert asyncio.run(whoami())["run"] == world.run.pk


def test_whoami_and_list_team(world: World):
    mcp = world.mcp()

    me = mcp.ok("whoami")
    team = mcp.ok("list_team")

    assert me["handle"] == "coder"
    assert me["team"] == {"id": world.team.pk, "name": world.team.name}
    assert (me["run"], me["thread"], me["thread_label"]) == (
        world.run.pk,
        world.general.pk,
        "#general",
    )
    assert [a["handle"] for a in team["agents"]] == ["coder", "reviewer"]
    assert [a["you"] for a in team["agents"]] == [True, False]
    assert [h["handle"] for h in team["humans"]] == [world.owner.user.username]
    assert "spy" not in str(team)


# -- messages ----------------------------------------------------------------------------------


def test_post_message_appends_to_the_run_thread_and_mentions_are_delivered(world: World):
    posted = world.mcp().ok("post_message", body="Ready for review, @reviewer")

    message = Message.objects.get(pk=posted["id"])
    assert message.thread_id == world.general.pk
    assert (message.author_agent_id, message.run_id) == (world.coder.pk, world.run.pk)
    assert message.body == "Ready for review, @reviewer"
    [delivery] = Delivery.objects.filter(message=message)
    assert delivery.agent_id == world.reviewer.pk
    assert [d["handle"] for d in posted["deliveries"]] == ["reviewer"]


def test_post_message_to_another_thread_by_name_or_id(world: World):
    design = ThreadFactory(team=world.team, name="design")
    mcp = world.mcp()

    by_name = mcp.ok("post_message", body="by name", thread="#design")
    by_id = mcp.ok("post_message", body="by id", thread=design.pk)

    assert by_name["thread"] == by_id["thread"] == design.pk
    assert list(design.messages.values_list("body", flat=True).order_by("seq")) == [
        "by name",
        "by id",
    ]


def test_send_message_addresses_agents_and_humans(world: World):
    human = world.owner.user.username

    sent = world.mcp().ok("send_message", to=["@reviewer", human], body="please look")

    message = Message.objects.get(pk=sent["id"])
    assert message.thread_id == world.general.pk
    assert "@reviewer" in message.body and f"@{human}" in message.body
    deliveries = Delivery.objects.filter(message=message)
    assert list(deliveries.values_list("agent__handle", flat=True)) == ["reviewer"]
    assert sorted(message.data["to"]) == sorted(["@reviewer", f"@{human}"])


def test_an_unknown_recipient_is_an_error_that_reaches_the_client_and_sends_nothing(world: World):
    before = Message.objects.count()

    error = world.mcp().error("send_message", to="@nobody", body="hello?")

    assert "No agent or member of this team is called @nobody" in error
    assert "@coder, @reviewer" in error  # the hint names who is there
    assert Message.objects.count() == before


def test_read_inbox_marks_read_and_ack_acknowledges(world: World):
    message = message_post(actor=world.owner, thread=world.general, body="@coder fix the bug")
    delivery = Delivery.objects.get(message=message, agent=world.coder)
    mcp = world.mcp()

    inbox = mcp.ok("read_inbox")["messages"]
    assert [(m["delivery"], m["message"]["body"]) for m in inbox] == [
        (delivery.pk, "@coder fix the bug")
    ]
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.READ
    assert mcp.ok("read_inbox")["messages"] == []  # read ones only when asked
    assert [m["delivery"] for m in mcp.ok("read_inbox", include_read=True)["messages"]] == [
        delivery.pk
    ]

    assert mcp.ok("ack", deliveries=[delivery.pk]) == {"acked": 1}

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.ACKED
    assert mcp.ok("read_inbox", include_read=True)["messages"] == []


def test_ack_ignores_deliveries_of_other_agents(world: World):
    message = message_post(actor=world.owner, thread=world.general, body="@reviewer yours")
    theirs = Delivery.objects.get(message=message, agent=world.reviewer)

    assert world.mcp().ok("ack", deliveries=[theirs.pk]) == {"acked": 0}
    theirs.refresh_from_db()
    assert theirs.state != DeliveryState.ACKED


# -- delegation and runs -----------------------------------------------------------------------


def test_delegate_creates_a_child_run_of_the_caller(world: World):
    result = world.mcp().ok("delegate", to="@reviewer", goal="Review the patch")

    child = Run.objects.get(parent=world.run)
    assert (child.agent_id, child.status, child.prompt) == (
        world.reviewer.pk,
        RunStatus.QUEUED,
        "Review the patch",
    )
    assert result["run"] == child.pk and result["to"] == "reviewer"
    assert result["status"] == "queued"


def test_delegate_with_wait_returns_the_child_result_and_blocks_nobody(world: World):
    seen: dict[str, object] = {}

    def child_side() -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                child = Run.objects.filter(parent=world.run, parent_waiting=True).first()
                if child is not None:
                    break
                time.sleep(0.05)
            else:
                seen["error"] = "the child run never appeared"
                return
            # The delegate call is blocked waiting; the server still answers others.
            seen["whoami"] = world.mcp().ok("whoami")["handle"]
            finish(child, result="LGTM, ship it")
        except Exception as exc:  # reported by the assertion below
            seen["error"] = repr(exc)
        finally:
            connection.close()

    helper = threading.Thread(target=child_side)
    helper.start()
    result = world.mcp().ok("delegate", to="reviewer", goal="Review it", wait=True, timeout=60)
    helper.join(timeout=30)

    assert "error" not in seen, seen
    assert seen["whoami"] == "coder"
    assert result["status"] == RunStatus.SUCCEEDED
    assert result["result"] == "LGTM, ship it"
    assert Run.objects.get(pk=result["run"]).parent_id == world.run.pk


def test_get_run_shows_a_run_of_the_team_and_its_children(world: World):
    mcp = world.mcp()
    child = mcp.ok("delegate", to="@reviewer", goal="Check")["run"]

    mine = mcp.ok("get_run", run_id=world.run.pk)
    theirs = mcp.ok("get_run", run_id=child)

    assert (mine["id"], mine["status"], mine["children"]) == (
        world.run.pk,
        RunStatus.RUNNING,
        [child],
    )
    assert (theirs["agent_handle"], theirs["parent"]) == ("reviewer", world.run.pk)


# -- artifacts and memory ----------------------------------------------------------------------


def test_artifacts_are_versioned_and_listed(world: World):
    mcp = world.mcp()

    first = mcp.ok("put_artifact", name="plan.md", content="# Plan\n", kind="plan")
    second = mcp.ok("put_artifact", name="plan.md", content="# Plan v2\n", kind="plan")
    latest = mcp.ok("get_artifact", name="plan.md")
    old = mcp.ok("get_artifact", name="plan.md", version=1)
    listed = mcp.ok("list_artifacts")["artifacts"]
    in_thread = mcp.ok("list_artifacts", thread="#general")["artifacts"]

    assert (first["version"], second["version"]) == (1, 2)
    assert (latest["version"], latest["content"]) == (2, "# Plan v2\n")
    assert (old["version"], old["content"]) == (1, "# Plan\n")
    assert [(a["name"], a["kind"], a["latest_version"]) for a in listed] == [("plan.md", "plan", 2)]
    assert in_thread == listed
    versions = ArtifactVersion.objects.filter(artifact__team=world.team).order_by("version")
    assert [(v.version, v.author_run_id) for v in versions] == [
        (1, world.run.pk),
        (2, world.run.pk),
    ]


def test_team_memory(world: World):
    mcp = world.mcp()

    mcp.ok("memory_set", key="build/command", value="make test")
    mcp.ok("memory_set", key="style", value="ruff")
    got = mcp.ok("memory_get", key="build/command")
    listed = mcp.ok("memory_list", prefix="build/")["notes"]

    assert (got["value"], got["updated_by"]) == ("make test", "@coder")
    assert [n["key"] for n in listed] == ["build/command"]
    assert [n["key"] for n in mcp.ok("memory_list")["notes"]] == ["build/command", "style"]
    assert MemoryNote.objects.get(team=world.team, key="style").value == "ruff"


def test_service_errors_are_tool_errors_with_their_message(world: World):
    mcp = world.mcp()

    assert "No artifact 'plan.md'" in mcp.error("get_artifact", name="plan.md")
    assert "No memory note" in mcp.error("memory_get", key="nothing")
    assert "cannot delegate to itself" in mcp.error("delegate", to="@coder", goal="x")
    assert "empty" in mcp.error("post_message", body="   ")
    assert "kind" in mcp.error("put_artifact", name="x", content="y", kind="poem")


# -- refusals ----------------------------------------------------------------------------------


def _raw_post(world: World, headers: dict[str, str]) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    return httpx2.post(
        world.mcp_url,
        json=body,
        headers={"Accept": "application/json, text/event-stream", **headers},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "not_authenticated"),
        ("Bearer ozr_not-a-real-token", "invalid_token"),
        ("Bearer garbage", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
    ],
)
def test_requests_without_a_valid_run_token_are_401_before_mcp(world: World, authorization, code):
    response = _raw_post(world, {"Authorization": authorization} if authorization else {})

    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_token_of_a_finished_run_is_refused(world: World):
    finish(world.run, result="done")

    response = _raw_post(world, {"Authorization": f"Bearer {world.token}"})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    with pytest.raises(Exception):  # noqa: B017 -- the SDK client cannot even initialize
        world.mcp().tools()


def test_a_humans_api_token_is_refused(world: World):
    human = token_for(world.owner.user)

    for authorization in (f"Bearer {human}", f"Token {human}"):
        assert _raw_post(world, {"Authorization": authorization}).status_code == 401


def test_a_token_works_for_its_own_team_only(world: World):
    other = world.other
    mcp = world.mcp()

    errors = [
        mcp.error("post_message", body="hi", thread=other["thread"].pk),
        mcp.error("post_message", body="hi", thread="#secret"),
        mcp.error("list_artifacts", thread=other["thread"].pk),
        mcp.error("get_run", run_id=other["run"].pk),
        mcp.error("send_message", to="@spy", body="hi"),
        mcp.error("delegate", to="@spy", goal="leak"),
    ]

    assert "No thread" in errors[0] and "No thread" in errors[1] and "No thread" in errors[2]
    assert f"No run {other['run'].pk} in this team" in errors[3]
    assert "@spy" in errors[4] and "@spy" in errors[5]
    assert not Message.objects.filter(thread=other["thread"], author_agent=world.coder).exists()
    assert not Run.objects.filter(agent=other["agent"], parent=world.run).exists()
    assert other["thread"].name not in str(mcp.ok("list_artifacts"))


def test_another_teams_artifacts_and_memory_are_invisible(world: World):
    spy = McpCaller(world.mcp_url, world.other["token"])
    spy.ok("put_artifact", name="secret.txt", content="classified")
    spy.ok("memory_set", key="secret", value="classified")
    mcp = world.mcp()

    assert "classified" not in mcp.error("get_artifact", name="secret.txt")
    assert "classified" not in mcp.error("memory_get", key="secret")
    assert mcp.ok("list_artifacts") == {"artifacts": []}
    assert mcp.ok("memory_list") == {"notes": []}


def test_a_second_run_of_another_agent_acts_as_that_agent(world: World):
    run, token = start_run(world.reviewer, world.general)

    me = McpCaller(world.mcp_url, token).ok("whoami")

    assert (me["handle"], me["run"]) == ("reviewer", run.pk)
