"""The artifact store full or unwritable: `put_artifact` through the agent door.

The store is a real file system: a tiny tmpfs that fills up mid-write (ENOSPC), and one
mounted read-only (EROFS). The agent gets a clear error (507 storage_full, 503
storage_unavailable); nothing is half-written: no Artifact or ArtifactVersion row, no card in
the thread, no partial file that a later put of the same bytes would share.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.artifacts.models import Artifact, ArtifactVersion
from apps.runs.creation import NewRun, run_create
from apps.runs.tokens import token_issue
from apps.threads.models import Message, MessageKind

pytestmark = pytest.mark.django_db

STORE_BYTES = 64 * 1024


def mount(*options: str) -> Iterator[Path]:
    """A tmpfs of STORE_BYTES of our own (needs root, or the right to mount)."""
    point = Path(tempfile.mkdtemp(prefix="ozweb-faults-store-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={STORE_BYTES}", "tmpfs", str(point)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        for option in options:
            subprocess.run(["mount", "-o", f"remount,{option}", str(point)], check=True)
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)
        point.rmdir()


@pytest.fixture
def full_store(settings) -> Iterator[Path]:
    for point in mount():
        settings.MEDIA_ROOT = str(point)
        yield point


@pytest.fixture
def read_only_store(settings) -> Iterator[Path]:
    for point in mount("ro"):
        settings.MEDIA_ROOT = str(point)
        yield point


@pytest.fixture
def agent_door(manual_run_dispatch, agent, thread) -> APIClient:
    run = run_create(NewRun(agent=agent, prompt="work", thread=thread))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(run=run)}")
    return client


def put(client: APIClient, name: str, content: str):
    return client.post(
        "/api/v1/agent/put_artifact/", {"name": name, "content": content}, format="json"
    )


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def nothing_kept(thread) -> bool:
    cards = Message.objects.filter(thread=thread, kind=MessageKind.ARTIFACT)
    return not (Artifact.objects.exists() or ArtifactVersion.objects.exists() or cards.exists())


def test_a_full_store_is_a_clear_error_and_keeps_nothing(agent_door, full_store, thread):
    big = "x" * (2 * STORE_BYTES)  # under OZWEB_ARTIFACT_MAX_BYTES, over the free space

    response = put(agent_door, "report.txt", big)

    assert response.status_code == 507, response.json()
    assert response.json()["code"] == "storage_full"
    assert "artifact store is full" in response.json()["detail"]
    assert nothing_kept(thread)
    assert stored_files(full_store) == []  # the part written before ENOSPC is gone

    # The store works for what fits, and the failed put can be made again once there is room.
    small = put(agent_door, "note.txt", "fits")
    assert small.status_code == 200, small.json()
    assert [p.read_text() for p in stored_files(full_store)] == ["fits"]
    assert put(agent_door, "report.txt", big).status_code == 507
    assert Artifact.objects.get().name == "note.txt"


def test_a_partial_file_left_by_a_crash_is_not_shared(agent_door, full_store, thread):
    # A process killed mid-write (before this fix, also ENOSPC) left the first bytes at the
    # content address; the same content put later must not point at that truncated copy.
    content = "y" * 1000
    first = put(agent_door, "one.txt", content)
    assert first.status_code == 200
    path = stored_files(full_store)[0]
    path.write_text(content[:10])

    again = put(agent_door, "two.txt", content)

    assert again.status_code == 200
    assert path.read_text() == content
    assert ArtifactVersion.objects.get(artifact__name="two.txt").content.name == str(
        path.relative_to(full_store)
    )


def test_an_unwritable_store_is_a_clear_error_and_keeps_nothing(
    agent_door, read_only_store, thread
):
    assert not os.access(read_only_store, os.W_OK)

    response = put(agent_door, "plan.md", "# plan")

    assert response.status_code == 503, response.json()
    assert response.json()["code"] == "storage_unavailable"
    assert "cannot be written" in response.json()["detail"]
    assert nothing_kept(thread)
