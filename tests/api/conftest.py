import pytest


@pytest.fixture(autouse=True)
def _runs_not_executed(manual_run_dispatch) -> None:
    """These tests are about the platform; runs have their own tests."""


@pytest.fixture(params=["token", "session"])
def owner_api(request, owner):
    """The owner's API client, once with a token and once with the browser's session."""
    from tests.conftest import api_client_for, session_api_client_for

    make = api_client_for if request.param == "token" else session_api_client_for
    return make(owner.user)


# Stored bytes in a per-test directory, and the artifact and held-delivery builders.
from tests.artifacts.conftest import artifact_media_root, held_delivery, put  # noqa: E402, F401
