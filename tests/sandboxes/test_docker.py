"""Docker-only guarantees: hardening, labels, ownership of the mounts, the host network in
tests (an explicit override), and re-attaching to a run's container. The isolated network
and egress: test_network.py."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from pathlib import Path

import docker.errors
import pytest

from apps.runs.sandboxes.base import LABEL_RUN, LABEL_TEAM

pytestmark = pytest.mark.docker


@pytest.fixture
def sandbox(docker_sandbox):
    return docker_sandbox


def test_the_container_is_hardened_and_labelled(start, docker_client, run_id, tmp_path: Path):
    process = start(["sleep", "60"], labels={LABEL_TEAM: "7"})
    attrs = docker_client.api.inspect_container(process.container_id)
    host = attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == 512 * 1024**2
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 128
    assert not host["Privileged"]
    assert host["ReadonlyRootfs"]
    assert set(host["Tmpfs"]) == {"/tmp"}
    assert host["NetworkMode"] == "none"
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["WorkingDir"] == "/workspace"
    assert attrs["Config"]["Labels"][LABEL_RUN] == str(run_id)
    assert attrs["Config"]["Labels"][LABEL_TEAM] == "7"
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    # And no docker socket: the relay's socket folder is read-only.
    assert set(mounts) == {"/workspace", "/home/agent", "/run/ozweb"}
    assert mounts["/workspace"]["Source"] == str(tmp_path / "workspace")
    assert mounts["/workspace"]["RW"] and mounts["/home/agent"]["RW"]
    assert not mounts["/run/ozweb"]["RW"]


def test_the_process_runs_unprivileged(start):
    process = start(
        [
            "sh",
            "-c",
            "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status;"
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ]
    )
    lines = list(process.stdout_lines())
    assert process.wait(10) == 0
    assert lines[0] == "1000"
    assert "CapEff:\t0000000000000000" in lines
    assert "NoNewPrivs:\t1" in lines
    assert lines[-1] == "128"  # the pids limit is enforced by the kernel, not just recorded


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership is only handed over when running as root")
def test_files_the_agent_writes_belong_to_uid_1000_on_the_host(start, tmp_path: Path):
    process = start(
        ["sh", "-c", "echo hi > /workspace/made.txt && echo s > $HOME/session.json"],
        home_files={"config/settings.json": "{}"},
    )
    assert process.wait(10) == 0, process.stderr_tail()
    for path in (
        tmp_path / "workspace" / "made.txt",
        tmp_path / "home" / "session.json",
        tmp_path / "home" / "config" / "settings.json",
        tmp_path / "home" / "config",
    ):
        assert path.stat().st_uid == 1000, path


def test_the_host_network_reaches_a_server_on_127_0_0_1(start):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            body = b"hello from the host"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        process = start(
            [
                "python3",
                "-c",
                f"import urllib.request; print(urllib.request.urlopen({url!r}).read().decode())",
            ],
            network="host",
        )
        assert list(process.stdout_lines()) == ["hello from the host"]
        assert process.wait(10) == 0, process.stderr_tail()
    finally:
        server.shutdown()
        server.server_close()


TICKER = """
import itertools, sys, time
print("x" * 100000, flush=True)  # longer than one log-driver message
for i in itertools.count():
    print(i, flush=True)
    sys.stderr.write(f"err {i}\\n")
    time.sleep(0.05)
"""


def test_find_takes_over_a_run_and_replays_what_was_not_processed(start, docker_sandbox, run_id):
    original = start(["python3", "-c", TICKER])
    lines = original.stdout_lines()
    assert next(lines) == "x" * 100000
    assert [next(lines) for _ in range(3)] == ["0", "1", "2"]
    # The worker holding the run dies after processing 4 lines; the container goes on.
    original._sock.shutdown(socket.SHUT_RDWR)
    time.sleep(0.3)  # output nobody is attached to read

    found = docker_sandbox.find(run_id, skip_stdout_lines=4)
    assert found is not None
    assert found.container_id == original.container_id
    resumed = found.stdout_lines()
    # Nothing lost, nothing repeated: the line after the 4 processed ones comes next.
    assert [next(resumed) for _ in range(10)] == [str(i) for i in range(3, 13)]
    with pytest.raises(OSError):
        found.write(b"stdin went with the first worker\n")
    assert "err 3" in found.stderr_tail()

    found.kill()
    assert found.wait(5) == 137
    assert original.wait(5) == 137
    # An exited container that was not removed yet is still found, its output replayable.
    again = docker_sandbox.find(run_id, skip_stdout_lines=1)
    assert again is not None
    assert next(again.stdout_lines()) == "0"
    again.cleanup()
    assert docker_sandbox.find(run_id) is None


def test_find_returns_none_for_a_run_without_a_container(docker_sandbox, run_id):
    assert docker_sandbox.find(run_id) is None


def test_cleanup_removes_the_container(start, docker_client):
    process = start(["true"])
    assert process.wait(10) == 0
    process.cleanup()
    process.cleanup()
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(process.container_id)


def test_a_container_starts_and_answers_quickly(start):
    started = time.monotonic()
    process = start(["python3", "-c", "print('up')"])
    assert next(process.stdout_lines()) == "up"
    # Generous: typically ~0.3 s here; the point is that nothing waits on EOF or polls.
    assert time.monotonic() - started < 5


def _spec(tmp_path: Path, run_id: int, **fields):
    from apps.runs.sandboxes.base import SandboxSpec

    return SandboxSpec(
        run_id=run_id,
        image=fields.pop("image", "ozweb-harness:local"),
        argv=fields.pop("argv", ["true"]),
        env={},
        workspace=tmp_path / "workspace",
        home=tmp_path / "home",
        **fields,
    )


def _containers_of(docker_client, run_id: int) -> list:
    return docker_client.api.containers(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})


def test_a_limit_the_engine_can_not_enforce_fails_the_start(
    docker_client, tmp_path: Path, run_id, monkeypatch
):
    from apps.runs.sandboxes import DockerSandbox
    from apps.runs.sandboxes.base import SandboxError

    info = docker_client.api.info()
    monkeypatch.setattr(docker_client.api, "info", lambda: {**info, "PidsLimit": False})
    sandbox = DockerSandbox(docker_client)
    with pytest.raises(SandboxError, match=r"can not enforce the pids limit.*OZWEB_SANDBOX_PIDS=0"):
        sandbox.start(_spec(tmp_path, run_id))
    assert _containers_of(docker_client, run_id) == []  # nothing ran unlimited
    assert "can not enforce the pids limit" in " ".join(sandbox.hardening_problems()["problems"])

    # Asked for knowingly (the limit set to 0), the run starts without that one limit.
    process = sandbox.start(_spec(tmp_path, run_id, pids_limit=0))
    try:
        assert process.wait(10) == 0
        host = docker_client.api.inspect_container(process.container_id)["HostConfig"]
        assert not host["PidsLimit"]
        assert host["Memory"] == 2 * 1024**3
    finally:
        process.cleanup()


def test_a_start_refused_over_cgroups_fails_with_a_clear_error(
    docker_client, tmp_path: Path, run_id, monkeypatch
):
    from docker.errors import APIError

    from apps.runs.sandboxes import DockerSandbox
    from apps.runs.sandboxes.base import SandboxError

    def refused(container_id):
        raise APIError("OCI runtime create failed: cgroup memory controller not available")

    monkeypatch.setattr(docker_client.api, "start", refused)
    sandbox = DockerSandbox(docker_client)
    with pytest.raises(SandboxError, match="refused the resource limits.*do not start unlimited"):
        sandbox.start(_spec(tmp_path, run_id, argv=["echo", "must not run"]))
    assert _containers_of(docker_client, run_id) == []  # no retry without limits, nothing left


def test_the_harness_argv_replaces_the_image_entrypoint(docker_client, docker_sandbox, start):
    import io

    dockerfile = b'FROM ozweb-harness:local\nENTRYPOINT ["echo", "from-the-entrypoint"]\n'
    tag = "ozweb-sandbox-test-entrypoint:latest"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, pull=False, rm=True)
    try:
        process = start(["echo", "from-argv"], image=tag)
        assert list(process.stdout_lines()) == ["from-argv"]
        assert process.wait(10) == 0
        process.cleanup()
    finally:
        docker_client.images.remove(tag, force=True)


def test_without_root_the_container_runs_as_the_workers_uid(
    start, monkeypatch, tmp_path: Path, docker_client
):
    # A worker that is neither root nor uid 1000 can not chown: its container runs as its own
    # uid, which owns the folders it made; nothing is opened up to everyone (no 0777).
    for name in ("workspace", "home"):
        (tmp_path / name).mkdir()
        os.chown(tmp_path / name, 4321, 4321)
    monkeypatch.setattr("apps.runs.sandboxes.docker.os.geteuid", lambda: 4321)
    monkeypatch.setattr("apps.runs.sandboxes.docker.os.getegid", lambda: 4321)
    process = start(["sh", "-c", "id -u; echo w > /workspace/made.txt && echo h > $HOME/made.txt"])
    assert process.wait(10) == 0, process.stderr_tail()
    assert list(process.stdout_lines()) == ["4321"]
    for name in ("workspace", "home"):
        made = tmp_path / name / "made.txt"
        assert made.stat().st_uid == 4321
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o755


def test_without_root_a_folder_of_another_user_fails_the_start(
    docker_sandbox, monkeypatch, tmp_path: Path, run_id
):
    from apps.runs.sandboxes.base import SandboxError

    (tmp_path / "workspace").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.setattr("apps.runs.sandboxes.docker.os.geteuid", lambda: 4321)
    with pytest.raises(SandboxError, match="belongs to uid 0, not to this worker's uid 4321"):
        docker_sandbox.start(_spec(tmp_path, run_id))
    assert (tmp_path / "workspace").stat().st_mode & 0o777 == 0o755


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_limit_can_not_be_applied_fails_with_the_reason(
    docker_client, monkeypatch, settings, tmp_path: Path, thread
):
    from apps.agents.models import Harness
    from apps.runs.creation import NewRun, run_create
    from apps.runs.executor import execute_run
    from apps.runs.models import RunStatus
    from apps.runs.sandboxes import DockerSandbox
    from tests.factories import AgentFactory

    settings.OZWEB_RUN_DISPATCH = "manual"
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")
    info = docker_client.api.info()
    monkeypatch.setattr(docker_client.api, "info", lambda: {**info, "MemoryLimit": False})
    agent = AgentFactory(team=thread.team, harness=Harness.COMMAND, command="echo ran")
    run = run_create(NewRun(agent=agent, prompt="go", thread=thread))

    execute_run(run.pk, sandbox=DockerSandbox(docker_client))

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("could not start: the Docker engine can not enforce the memory")
    assert "OZWEB_SANDBOX_MEMORY_BYTES=0" in run.error
    assert _containers_of(docker_client, run.pk) == []


def test_an_image_without_oz_relay_is_a_clear_error(
    docker_client, docker_sandbox, tmp_path, run_id
):
    import io

    from apps.runs.sandboxes.base import SandboxError

    dockerfile = b"FROM ozweb-harness:local\nUSER 0\nRUN rm /usr/local/bin/oz-relay\nUSER 1000\n"
    tag = "ozweb-sandbox-test-no-relay:latest"
    docker_client.images.build(
        fileobj=io.BytesIO(dockerfile), tag=tag, pull=False, rm=True, network_mode="none"
    )
    try:
        with pytest.raises(SandboxError, match=f"the image {tag} has no oz-relay"):
            docker_sandbox.start(_spec(tmp_path, run_id, image=tag))
        assert _containers_of(docker_client, run_id) == []
    finally:
        docker_client.images.remove(tag, force=True)
