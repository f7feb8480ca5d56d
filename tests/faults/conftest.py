"""Fault tests: each starts private instances of the services it breaks (tests.faults.services)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from harness_image.build import OS_REPOSITORY
from tests.conftest import POSTGRES_URL, require_service
from tests.e2e.servers import base_env, manage
from tests.faults.services import DockerEngine, PostgresCluster, RedisServer


def fault_database(url: str, template: str | None = None) -> Iterator[str]:
    """A fresh database on the PostgreSQL server at `url` (a copy of `template`, if given),
    dropped afterwards."""
    name = f"ozweb_faults_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    yield url.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.OperationalError:
        pass  # a private cluster that is already gone takes the database with it


def migrated(database_url: str, var_dir: Path) -> str:
    """Migrate the database and add the API user `operator` in team Faults: its token."""
    env = base_env(DATABASE_URL=database_url, OZWEB_VAR_DIR=str(var_dir))
    manage(env, "migrate", "--noinput", "-v0")
    return manage(env, "create_api_user", "operator", "--team", "Faults").split()[-1]


@dataclass
class FaultDatabase:
    url: str
    token: str  # the API token of `operator`, an admin of team Faults


@pytest.fixture(scope="session")
def fault_template(tmp_path_factory) -> Iterator[FaultDatabase]:
    """One migrated database per session on the shared PostgreSQL, which each test copies:
    migrating takes seconds, a copy a fraction of one."""
    require_service(POSTGRES_URL, "PostgreSQL")
    for url in fault_database(POSTGRES_URL):
        yield FaultDatabase(url, migrated(url, tmp_path_factory.mktemp("faults-template")))


@pytest.fixture
def shared_postgres_database(fault_template: FaultDatabase) -> Iterator[FaultDatabase]:
    """A database of this test's own on the shared PostgreSQL, migrated, with `operator`."""
    for url in fault_database(POSTGRES_URL, template=fault_template.url.rsplit("/", 1)[1]):
        yield FaultDatabase(url, fault_template.token)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    if not PostgresCluster.available():
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    # Not under pytest's tmp_path: as root the cluster runs as `nobody`, who cannot enter it.
    workdir = Path(tempfile.mkdtemp(prefix="ozweb-faults-pg-"))
    cluster = PostgresCluster(workdir).create()
    yield cluster
    with contextlib.suppress(RuntimeError):  # already stopped
        cluster.stop(mode="immediate")
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def private_docker_engine(harness_image: str) -> Iterator[DockerEngine]:
    """A dockerd of our own with a small image (Debian with python3: the harness image's OS
    layer) loaded; the machine's engine, which others use, is never restarted."""
    if not DockerEngine.available():
        pytest.skip("a second dockerd needs root and /usr/sbin/dockerd")
    layers = subprocess.run(
        ["docker", "images", OS_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not layers:
        pytest.skip(f"no {OS_REPOSITORY} image (manage.py build_harness_image builds it)")
    engine = DockerEngine().start()
    try:
        engine.load(layers[0])
        engine.image = layers[0]
        yield engine
    finally:
        engine.close()
