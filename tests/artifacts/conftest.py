import pytest

from apps.artifacts.services import artifact_put
from apps.threads.models import Delivery
from apps.threads.services import NewMessage, messages_append
from tests.factories import AgentFactory


@pytest.fixture(autouse=True)
def _runs_not_executed(manual_run_dispatch) -> None:
    """These tests are about the platform; runs have their own tests."""


@pytest.fixture(autouse=True)
def artifact_media_root(settings, tmp_path) -> None:
    """Stored artifact bytes go to this test's directory, never the install's var dir."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def put(team):
    """Put a version of an artifact in the team, as the storage service does for agents."""

    def put(name: str, content: bytes | str = "hello", **fields):
        return artifact_put(team=team, name=name, content=content, **fields)

    return put


def make_held_delivery(*, thread, agent) -> Delivery:
    """A message from another agent to `agent`, one hop past the team's limit (lowered to 2)."""
    team = thread.team
    team.hop_limit = 2
    team.save(update_fields=["hop_limit"])
    lead = AgentFactory(team=team, handle=f"lead-of-{agent.handle}")
    [message] = messages_append(
        thread=thread,
        items=[NewMessage(body="carry on", author_agent=lead, hop=3, recipients=[agent])],
    )
    [delivery] = message.delivery_list
    assert delivery.held
    return delivery


@pytest.fixture
def held_delivery(thread, agent) -> Delivery:
    return make_held_delivery(thread=thread, agent=agent)
