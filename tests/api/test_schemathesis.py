"""The REST API answers as its OpenAPI schema says: schemathesis with every check against a
live daphne on the test database, with a user's token, over a seeded team whose ids the path
parameters are pinned to (so requests reach real rows). 0 server errors, 0 violations.

Bounded for the suite: a few examples per operation, a fixed seed, derandomized (about a
minute). Its output (and the server's log) is the failure message; schemathesis.toml and a
JUnit report are kept in the test's tmp_path to replay it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.servers import Daphne
from tests.support.schemathesis import (
    LEAVES_THE_MACHINE,
    live_daphne,
    run_schemathesis,
    schemathesis_config,
    seed_team,
)

# Well over a minute once the API grew past a hundred operations: its own timeout.
pytestmark = [
    pytest.mark.schemathesis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def live_api(django_db_setup, tmp_path_factory) -> Iterator[Daphne]:
    server = live_daphne(tmp_path_factory.mktemp("schemathesis-api"))
    yield server
    server.stop()


def test_the_rest_api_matches_its_schema(live_api, manual_run_dispatch, settings, tmp_path):
    settings.MEDIA_ROOT = live_api.env["OZWEB_MEDIA_ROOT"]
    seeded = seed_team()
    config = schemathesis_config(
        auth={"tokenAuth": {"api_key": f"Token {seeded.token}"}},
        parameters={
            "path.team_id": seeded.team.pk,
            "path.agent_id": seeded.agent.pk,
            "path.thread_id": seeded.thread.pk,
            "path.member_id": seeded.member.pk,
            "path.run_id": seeded.run.pk,
            "path.artifact_id": seeded.artifact.pk,
            "path.version": 1,
            "path.key": "style",
            "path.delivery_id": seeded.held_delivery.pk,
            "path.invitation_id": seeded.invitation_received.pk,
        },
        operations=[
            # What goes away gets rows of its own, so the others keep theirs.
            {
                "include-operation-id": "agents_destroy",
                "parameters": {"agent_id": seeded.spare_agent.pk},
            },
            {
                "include-operation-id": "teams_members_destroy",
                "parameters": {"member_id": seeded.spare_member.pk},
            },
            {"include-operation-id": "teams_memory_destroy", "parameters": {"key": "scratch"}},
            {
                "include-operation-id": "runs_cancel_create",
                "parameters": {"run_id": seeded.spare_run.pk},
            },
            {
                "include-operation-id": "teams_invitations_destroy",
                "parameters": {"invitation_id": seeded.invitation_sent.pk},
            },
        ],
    )

    result = run_schemathesis(
        url=live_api.url,
        config=config,
        report_dir=tmp_path / "report",
        exclude_tag="agent",
        exclude_operations=LEAVES_THE_MACHINE,
    )

    assert result.returncode == 0, (
        f"{result.stdout[-30000:]}\n{result.stderr[-3000:]}\n{live_api.log()}"
    )
