"""The local subprocess sandbox's own traits, and how a sandbox is chosen."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from apps.runs.sandboxes import DockerSandbox, LocalSandbox, get_sandbox, sandbox_network
from apps.runs.sandboxes.local import with_setup


@pytest.fixture
def sandbox():
    return LocalSandbox()


def test_the_local_sandbox_is_marked_unsandboxed_and_never_reattaches(sandbox, run_id):
    assert sandbox.kind == "local"
    assert sandbox.isolated is False
    assert sandbox.find(run_id) is None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_kill_also_kills_what_the_process_started(start):
    process = start(["sh", "-c", "sleep 60 & echo $!; wait"])
    child = int(next(process.stdout_lines()))
    assert _alive(child)
    process.kill()
    assert process.wait(5) == 137
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_the_process_gets_a_minimal_environment(start, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("WORKER_ONLY_SECRET", "do-not-leak")
    process = start(["sh", "-c", 'echo "${WORKER_ONLY_SECRET:-unset} $HOME"'], env={"A": "1"})
    assert list(process.stdout_lines()) == [f"unset {tmp_path / 'home'}"]
    assert process.wait(5) == 0


def test_setup_wrapping_leaves_argv_alone_without_commands():
    assert with_setup([], ["claude", "-p"], "/workspace") == ["claude", "-p"]
    wrapped = with_setup(["npm ci"], ["claude", "-p", "a b"], "/work space")
    assert wrapped[:2] == ["sh", "-c"]
    assert wrapped[3:] == ["ozweb-setup", "claude", "-p", "a b"]
    assert "cd '/work space'" in wrapped[2]


@pytest.mark.parametrize("value", ["local", "LOCAL"])
def test_get_sandbox_honours_the_setting(settings, value):
    settings.OZWEB_SANDBOX = value
    assert isinstance(get_sandbox(), LocalSandbox)


def test_get_sandbox_reads_the_environment(settings, monkeypatch):
    settings.OZWEB_SANDBOX = None
    monkeypatch.setenv("OZWEB_SANDBOX", "local")
    assert isinstance(get_sandbox(), LocalSandbox)


def test_auto_falls_back_to_local_without_an_engine(settings, monkeypatch, caplog):
    settings.OZWEB_SANDBOX = "auto"
    monkeypatch.setattr(DockerSandbox, "available", classmethod(lambda cls: False))
    assert isinstance(get_sandbox(), LocalSandbox)
    assert "UNSANDBOXED" in caplog.text


def test_auto_prefers_docker_when_an_engine_answers(settings, monkeypatch):
    settings.OZWEB_SANDBOX = "auto"
    monkeypatch.setattr(DockerSandbox, "available", classmethod(lambda cls: True))
    monkeypatch.setattr(DockerSandbox, "__init__", lambda self, client=None: None)
    assert isinstance(get_sandbox(), DockerSandbox)


def test_an_unknown_kind_is_an_error(settings):
    settings.OZWEB_SANDBOX = "kubernetes"
    with pytest.raises(ValueError, match="OZWEB_SANDBOX"):
        get_sandbox()


def test_sandbox_network_is_never_the_hosts_unless_named(monkeypatch, settings):
    monkeypatch.delenv("OZWEB_SANDBOX_NETWORK", raising=False)
    for url in ("https://ozweb.example.com", "http://127.0.0.1:8000"):
        settings.OZWEB_AGENT_API_URL = url
        assert sandbox_network() is None  # --network none, ozweb through the relay
    monkeypatch.setenv("OZWEB_SANDBOX_NETWORK", "isolated-net")
    assert sandbox_network() == "isolated-net"


def test_the_url_a_sandbox_reaches_ozweb_at(monkeypatch, settings):
    from apps.runs.sandboxes import sandbox_ozweb_url

    monkeypatch.delenv("OZWEB_SANDBOX_NETWORK", raising=False)
    docker_kind = type("Docker", (), {"kind": "docker", "isolated": True})()
    cases = {
        # Same host and port inside (the container's own loopback): the URL is unchanged.
        "http://127.0.0.1:8000": "http://127.0.0.1:8000",
        # https and privileged ports end at the worker's relay; inside it is plain http.
        "https://ozweb.example.com": "http://ozweb.example.com:8765",
        "http://10.1.2.3:9000/base": "http://127.0.0.1:9000/base",
    }
    for url, inside in cases.items():
        settings.OZWEB_AGENT_API_URL = url
        assert sandbox_ozweb_url(docker_kind) == inside
        assert sandbox_ozweb_url(LocalSandbox()) == url
    monkeypatch.setenv("OZWEB_SANDBOX_NETWORK", "host")
    assert sandbox_ozweb_url(docker_kind) == "http://10.1.2.3:9000/base"
