import pytest


@pytest.fixture(autouse=True)
def _runs_not_executed(manual_run_dispatch) -> None:
    """These tests are about the platform; runs have their own tests."""
