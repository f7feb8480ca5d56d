"""`oz` (docker/agent-tools/oz), run as a sandbox runs it: a subprocess with OZWEB_URL and
OZWEB_TOKEN against a live daphne. Every command, its effect, and its errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest
from django.db import connection

from apps.artifacts.models import ArtifactVersion, MemoryNote
from apps.runs.models import Run, RunStatus
from apps.threads.models import Delivery, DeliveryState, Message
from apps.threads.services import message_post
from tests.agentapi.conftest import OZ, World, finish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def oz_json(world: World, *args: str, stdin: str | None = None) -> dict:
    done = world.oz(*args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_oz_is_an_executable_stdlib_script():
    assert os.access(OZ, os.X_OK)
    assert OZ.read_text().startswith("#!/usr/bin/env python3\n")


def test_help_and_usage_errors(world: World):
    help_text = world.oz("help")
    no_command = world.oz()
    bad_number = world.oz("ack", "seven")
    unknown = world.oz("fly")

    assert help_text.returncode == 0 and "oz delegate @agent GOAL" in help_text.stdout
    assert no_command.returncode == 0 and "oz whoami" in no_command.stdout
    assert bad_number.returncode == 2 and "invalid int value" in bad_number.stderr
    assert unknown.returncode == 2 and bad_number.stdout == unknown.stdout == ""


def test_whoami_and_team(world: World):
    me = oz_json(world, "whoami")
    team = oz_json(world, "team")

    assert (me["handle"], me["run"]) == ("coder", world.run.pk)
    assert [a["handle"] for a in team["agents"]] == ["coder", "reviewer"]


def test_post_and_send(world: World):
    posted = oz_json(world, "post", "Starting on it, @reviewer")
    to_thread = oz_json(world, "post", "-", "--thread", "#general", stdin="from stdin\n")
    sent = oz_json(world, "send", "@reviewer", world.owner.user.username, "please review")

    assert Message.objects.get(pk=posted["id"]).author_agent_id == world.coder.pk
    assert Message.objects.get(pk=to_thread["id"]).body == "from stdin"
    assert set(Delivery.objects.filter(message_id=sent["id"]).values_list("agent", flat=True)) == {
        world.reviewer.pk
    }


def test_inbox_and_ack(world: World):
    message = message_post(actor=world.owner, thread=world.general, body="@coder status?")
    delivery = Delivery.objects.get(message=message, agent=world.coder)

    inbox = oz_json(world, "inbox")["messages"]
    again = oz_json(world, "inbox", "--all", "--limit", "5")["messages"]
    acked = oz_json(world, "ack", str(delivery.pk))

    assert [m["delivery"] for m in inbox] == [m["delivery"] for m in again] == [delivery.pk]
    assert acked == {"acked": 1}
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.ACKED


def test_delegate_and_run(world: World):
    delegated = oz_json(world, "delegate", "@reviewer", "Review the patch")
    child = oz_json(world, "run", str(delegated["run"]))

    assert Run.objects.get(pk=delegated["run"]).parent_id == world.run.pk
    assert (child["agent_handle"], child["status"]) == ("reviewer", RunStatus.QUEUED)


def test_delegate_wait_returns_the_result_and_blocks_nobody(world: World):
    seen: dict[str, int] = {}

    def finish_child() -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                child = Run.objects.filter(parent=world.run, parent_waiting=True).first()
                if child is not None:
                    # The CLI's request is blocked in delegate; daphne answers others.
                    seen["whoami"] = world.oz("whoami").returncode
                    finish(child, result="all good")
                    return
                time.sleep(0.05)
        finally:
            connection.close()

    helper = threading.Thread(target=finish_child)
    helper.start()
    result = oz_json(world, "delegate", "@reviewer", "Check it", "--wait", "--timeout", "30")
    helper.join(timeout=30)

    assert (result["status"], result["result"]) == (RunStatus.SUCCEEDED, "all good")
    assert seen == {"whoami": 0}


def test_artifacts(world: World, tmp_path):
    patch = tmp_path / "fix.patch"
    patch.write_text("--- a\n+++ b\n")

    from_file = oz_json(world, "put", "fix.patch", "--file", str(patch), "--kind", "patch")
    from_text = oz_json(world, "put", "notes.md", "--text", "# Notes")
    from_stdin = oz_json(world, "put", "notes.md", stdin="# Notes v2\n")
    link = oz_json(world, "put", "pr", "--kind", "link", "--url", "https://example.com/pr/1")
    latest = oz_json(world, "get", "notes.md")
    raw = world.oz("get", "notes.md", "--version", "1", "--raw")
    listed = oz_json(world, "artifacts")["artifacts"]

    assert (from_file["kind"], from_file["version"]) == ("patch", 1)
    assert (from_text["version"], from_stdin["version"]) == (1, 2)
    assert link["url"] == "https://example.com/pr/1"
    assert latest["content"] == "# Notes v2\n"
    assert (raw.returncode, raw.stdout) == (0, "# Notes")
    assert sorted(a["name"] for a in listed) == ["fix.patch", "notes.md", "pr"]
    assert ArtifactVersion.objects.filter(artifact__name="notes.md").count() == 2


def test_memory(world: World):
    oz_json(world, "mem", "set", "deploy/host", "prod-1")
    oz_json(world, "mem", "set", "deploy/notes", "-", stdin="blue-green\n")

    got = oz_json(world, "mem", "get", "deploy/host")
    listed = oz_json(world, "mem", "list", "deploy/")["notes"]

    assert got["value"] == "prod-1"
    assert [n["key"] for n in listed] == ["deploy/host", "deploy/notes"]
    assert MemoryNote.objects.get(key="deploy/notes").value == "blue-green"


def test_call_any_verb(world: World):
    result = oz_json(world, "call", "memory_set", '{"key": "k", "value": "v"}')
    bad_json = world.oz("call", "memory_set", "{nope")

    assert result["value"] == "v"
    assert bad_json.returncode == 2


def test_errors_go_to_stderr_with_exit_1(world: World):
    unknown = world.oz("send", "@ghost", "hello")
    missing = world.oz("get", "nothing-here")
    unknown_verb = world.oz("call", "launch", "{}")

    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "No agent or member of this team is called @ghost" in unknown.stderr
    assert missing.returncode == 1 and "No artifact 'nothing-here'" in missing.stderr
    assert unknown_verb.returncode == 1 and "no agent verb 'launch'" in unknown_verb.stderr


def test_a_finished_run_or_a_missing_setup_is_refused(world: World):
    no_env = subprocess.run(
        ["python3", str(OZ), "whoami"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    garbage = world.oz("whoami", OZWEB_TOKEN="ozr_garbage")
    unreachable = world.oz("whoami", OZWEB_URL="http://127.0.0.1:9")
    finish(world.run, result="done")
    expired = world.oz("whoami")

    assert no_env.returncode == 1 and "OZWEB_URL and OZWEB_TOKEN" in no_env.stderr
    assert garbage.returncode == 1 and "unknown, or its run has ended" in garbage.stderr
    assert unreachable.returncode == 1 and "cannot reach ozweb" in unreachable.stderr
    assert expired.returncode == 1 and "unknown, or its run has ended" in expired.stderr


def test_oz_agent_api_url_is_the_fallback_address(world: World):
    done = world.oz("whoami", OZWEB_URL="", OZWEB_AGENT_API_URL=world.url)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["handle"] == "coder"


@pytest.mark.docker
def test_oz_in_the_harness_image_reaches_ozweb(world: World, harness_image: str):
    done = subprocess.run(
        [
            *("docker", "run", "--rm", "--network", "host", "--cap-drop", "ALL"),
            *("-e", f"OZWEB_URL={world.url}", "-e", f"OZWEB_TOKEN={world.token}"),
            *(harness_image, "oz", "post", "hello from the sandbox"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    message = Message.objects.get(pk=json.loads(done.stdout)["id"])
    assert (message.body, message.author_agent_id) == ("hello from the sandbox", world.coder.pk)


def test_put_a_large_file(world: World, tmp_path):
    big = tmp_path / "big.log"
    big.write_text("line of log output\n" * 200_000)  # 3.8 MB, over Django's 2.5 MB form limit

    put = oz_json(world, "put", "big.log", "--file", str(big))

    assert put["size"] == big.stat().st_size
