from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runs.conftest import Background


@pytest.fixture(autouse=True)
def run_settings(settings, tmp_path: Path) -> None:
    settings.OZWEB_RUN_DISPATCH = "manual"
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")


@pytest.fixture
def background() -> Iterator[Background]:
    runner = Background()
    yield runner
    runner.join()
