"""Fixtures for the sandbox tests: the same behaviour tests run against the local subprocess
sandbox and (with an engine) the Docker sandbox, on the real harness image."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from apps.runs.sandboxes import DockerSandbox, LocalSandbox
from apps.runs.sandboxes.base import SandboxProcess, SandboxSpec
from harness_image import build_harness_image
from harness_image.constants import HARNESS_IMAGE
from tests.conftest import IN_CI


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of a reachable engine that has the harness image (built if missing)."""
    if not DockerSandbox.available():
        message = "no Docker engine answers (see scripts/docker/ensure-engine.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    client = docker.from_env()
    try:
        client.images.get(HARNESS_IMAGE)
    except docker.errors.ImageNotFound:
        build_harness_image(tag=HARNESS_IMAGE)
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_sandbox(docker_client: docker.DockerClient) -> DockerSandbox:
    return DockerSandbox(docker_client)


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def sandbox(request: pytest.FixtureRequest) -> DockerSandbox | LocalSandbox:
    if request.param == "docker":
        return request.getfixturevalue("docker_sandbox")
    return LocalSandbox()


@pytest.fixture
def python(sandbox: DockerSandbox | LocalSandbox) -> str:
    """The Python interpreter as the sandboxed process sees it."""
    return "python3" if sandbox.kind == "docker" else sys.executable


@pytest.fixture
def run_id() -> int:
    # Unique enough that concurrent test runs on one engine never share containers.
    return random.randint(10**9, 2 * 10**9)


@pytest.fixture
def start(
    sandbox: DockerSandbox | LocalSandbox, tmp_path: Path, run_id: int
) -> Iterator[Callable[..., SandboxProcess]]:
    """start(argv, **spec_fields) -> a started process; killed and cleaned up afterwards."""
    started: list[SandboxProcess] = []

    def _start(argv: list[str], **fields: Any) -> SandboxProcess:
        spec = SandboxSpec(
            **{
                "run_id": run_id,
                "image": HARNESS_IMAGE,
                "argv": argv,
                "env": {},
                "workspace": tmp_path / "workspace",
                "home": tmp_path / "home",
                "memory_bytes": 512 * 1024**2,
                "nano_cpus": 1_000_000_000,
                "pids_limit": 128,
                **fields,
            }
        )
        process = sandbox.start(spec)
        started.append(process)
        return process

    yield _start
    for process in started:
        process.kill()
        process.wait(10)
        process.cleanup()
