"""The agent verbs answer as the OpenAPI schema says: schemathesis with every check against a
live daphne (the agent door of apps.agentapi.rest, not the DRF views the schema is made
from) on the test database, with a running run's token. 0 server errors, 0 violations.

Bounded like tests/api/test_schemathesis.py; a `delegate(wait=true)` waits one second at most
(tests/support/schemathesis_hooks.py), since nothing runs the child.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import shared_test_database_url
from tests.e2e.servers import Daphne, base_env
from tests.support.schemathesis import (
    UNTHROTTLED,
    run_schemathesis,
    schemathesis_config,
    seed_team,
)

pytestmark = [pytest.mark.schemathesis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def live_door(django_db_setup, tmp_path_factory) -> Iterator[Daphne]:
    tmp = tmp_path_factory.mktemp("schemathesis-agent")
    env = base_env(
        DATABASE_URL=shared_test_database_url(),
        OZWEB_VAR_DIR=str(tmp / "var"),
        OZWEB_MEDIA_ROOT=str(tmp / "media"),  # where seed_team stores artifact bytes too
        OZWEB_RUN_DISPATCH="manual",  # delegations queue child runs that nothing executes
        OZWEB_RUN_STALE_SECONDS="86400",  # the caller's run stays running throughout
        **UNTHROTTLED,
    )
    server = Daphne(env).start(tmp)
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
