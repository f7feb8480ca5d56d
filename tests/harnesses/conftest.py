"""Shared fixtures for harness tests: the samples directory, the scripted model server, and the
pinned CLIs installed by scripts/harness-clis/install.sh."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.model_server import ModelServer

REPO_ROOT = Path(__file__).resolve().parents[2]

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "shared" / "harness-samples"
CLI_BIN_DIR = REPO_ROOT / "var" / "harness-clis" / "node_modules" / ".bin"


@pytest.fixture
def model_server():
    with ModelServer() as server:
        yield server
