"""The agent verbs answer as the OpenAPI schema says: schemathesis with every check against a
live daphne (the agent door of apps.agentapi.rest, not the DRF views the schema is made
from) on the test database, with a running run's token. 0 server errors, 0 violations.

Bounded like tests/api/test_schemathesis.py; a `delegate(wait=true)` waits one second at most
(tests/support/schemathesis_hooks.py), since nothing runs the child.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.servers import Daphne
from tests.support.schemathesis import (
    live_daphne,
    run_schemathesis,
    schemathesis_config,
    seed_team,
)

pytestmark = [pytest.mark.schemathesis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def live_door(django_db_setup, tmp_path_factory) -> Iterator[Daphne]:
    server = live_daphne(tmp_path_factory.mktemp("schemathesis-agent"))
    yield server
    server.stop()


def test_the_agent_verbs_match_their_schema(live_door, manual_run_dispatch, settings, tmp_path):
    settings.MEDIA_ROOT = live_door.env["OZWEB_MEDIA_ROOT"]
    seeded = seed_team()
    config = schemathesis_config(auth={"runToken": {"bearer": seeded.run_token}}, parameters={})

    result = run_schemathesis(
        url=live_door.url, config=config, report_dir=tmp_path / "report", include_tag="agent"
    )

    assert result.returncode == 0, (
        f"{result.stdout[-30000:]}\n{result.stderr[-3000:]}\n{live_door.log()}"
    )
