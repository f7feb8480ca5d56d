"""Shared fixtures for harness tests: the samples directory, the scripted model server, and the
pinned CLIs installed by scripts/harness-clis/install.sh."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `tests.support` lives beside the apps, not in the package
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.model_server import ModelServer  # noqa: E402

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "shared" / "harness-samples"
CLI_BIN_DIR = REPO_ROOT / "var" / "harness-clis" / "node_modules" / ".bin"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "harness_cli: runs a real harness CLI (scripts/harness-clis/install.sh)"
    )


@pytest.fixture
def model_server():
    with ModelServer() as server:
        yield server
