"""The MCP tools check their arguments as the REST door does (ids in range, media types), and
a deeply nested body to /mcp/ is refused, never a 500. Against a real daphne."""

from __future__ import annotations

import httpx2
import pytest

from apps.artifacts.models import ArtifactVersion
from apps.core.ids import MAX_ID
from tests.agentapi.conftest import World

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

TOO_BIG = MAX_ID + 1


def test_ids_out_of_range_are_tool_errors_naming_the_argument(world: World):
    mcp = world.mcp()

    assert "deliveries" in mcp.error("ack", deliveries=[TOO_BIG])
    assert "run_id" in mcp.error("get_run", run_id=TOO_BIG)
    assert "thread" in mcp.error("post_message", body="hi", thread=TOO_BIG)
    assert mcp.ok("ack", deliveries=[MAX_ID]) == {"acked": 0}
    assert "No run" in mcp.error("get_run", run_id=MAX_ID)


def test_put_artifact_refuses_what_is_not_a_media_type(world: World):
    mcp = world.mcp()

    error = mcp.error(
        "put_artifact", name="a.html", content="x", media_type="text/html\r\nSet-Cookie: a=b"
    )
    too_long = mcp.error("put_artifact", name="a.txt", content="x", media_type="a/" + "b" * 5000)

    assert "media_type" in error and "media_type" in too_long
    assert not ArtifactVersion.objects.exists()
    stored = mcp.ok("put_artifact", name="a.txt", content="x", media_type="text/plain; q=1")
    assert stored["media_type"] == "text/plain; q=1"


@pytest.mark.parametrize("levels", [5_000, 30_000])
def test_deeply_nested_bodies_are_refused(world: World, levels):
    nested = "[" * levels + "]" * levels
    rest = httpx2.post(
        f"{world.url}/api/v1/agent/post_message/",
        content='{"body": ' + nested + "}",
        headers={"Authorization": f"Bearer {world.token}", "Content-Type": "application/json"},
        timeout=30,
    )
    mcp = httpx2.post(
        world.mcp_url,
        content='{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + nested + "}",
        headers={
            "Authorization": f"Bearer {world.token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )

    assert (rest.status_code, rest.json()["code"]) == (400, "too_deep")
    assert 400 <= mcp.status_code < 500, mcp.text
