"""The isolated default on a real engine: a container reaches ozweb through its worker's relay
and nothing else (not the host's PostgreSQL or Redis, not its other addresses), its root
filesystem is read-only, and an "egress" container gets allowlisted HTTPS through the logging
proxy. Every byte stays on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.runs.sandboxes.relay import container_endpoint

pytestmark = pytest.mark.docker


@pytest.fixture
def sandbox(docker_sandbox):
    return docker_sandbox


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        body = f"hello via {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hello_server() -> Iterator[int]:
    """A server on the host's loopback; returns its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _host_addresses() -> list[str]:
    """The host's own non-loopback IPv4 addresses (and the Docker bridge's, if any)."""
    done = subprocess.run(["hostname", "-I"], capture_output=True, text=True)
    return [a for a in done.stdout.split() if "." in a and not a.startswith("127.")]


def _reachable_here(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


CONNECT_PROBE = """
import json, socket, sys
out = {}
for target in json.loads(sys.argv[1]):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        out[target] = "connected"
    except OSError as exc:
        out[target] = type(exc).__name__
print(json.dumps(out))
"""

FETCH = """
import os, sys, urllib.request
print(urllib.request.urlopen(os.environ["OZWEB_URL"] + "/", timeout=10).read().decode())
"""


def test_the_container_reaches_ozweb_and_nothing_else(start, hello_server, settings):
    settings.OZWEB_AGENT_API_URL = f"http://127.0.0.1:{hello_server}"
    url = container_endpoint(settings.OZWEB_AGENT_API_URL).url
    # The services an agent must not reach answer here, so a refusal inside means something.
    services = [port for port in (5432, 6379) if _reachable_here(port)]
    assert services, "neither PostgreSQL (5432) nor Redis (6379) answers on this host"
    targets = [f"127.0.0.1:{port}" for port in services]
    targets += [f"{a}:{p}" for a in _host_addresses() for p in (*services, hello_server)]
    targets += ["127.0.0.1:3128"]  # no egress proxy for an ozweb-only container

    process = start(
        [
            "sh",
            "-c",
            'python3 -c "$1" "$2" && python3 -c "$3"; env | grep -ci proxy || true',
            "probe",
            CONNECT_PROBE,
            json.dumps(targets),
            FETCH,
        ],
        env={"OZWEB_URL": url},
    )
    lines = list(process.stdout_lines())
    assert process.wait(20) == 0, process.stderr_tail()
    results = json.loads(lines[0])
    assert set(results) == set(targets)
    assert "connected" not in results.values(), results
    # ozweb itself, through the relay, with the same host and port as outside.
    assert lines[1] == f"hello via 127.0.0.1:{hello_server}"
    assert lines[2] == "0"  # no proxy variables


def test_the_root_filesystem_is_read_only_but_workspace_home_and_tmp_are_not(start):
    script = """
import os
for path in ("/usr/oz-test", "/etc/oz-test", "/oz-test", "/var/oz-test"):
    try:
        open(path, "w").close()
        print(path, "written")
    except OSError as exc:
        print(path, exc.strerror)
for path in ("/workspace/w", os.environ["HOME"] + "/h", "/tmp/t"):
    open(path, "w").write("ok")
    print(path, open(path).read())
"""
    process = start(["python3", "-c", script])
    lines = list(process.stdout_lines())
    assert process.wait(10) == 0, process.stderr_tail()
    assert lines == [
        "/usr/oz-test Read-only file system",
        "/etc/oz-test Read-only file system",
        "/oz-test Read-only file system",
        "/var/oz-test Read-only file system",
        "/workspace/w ok",
        "/home/agent/h ok",
        "/tmp/t ok",
    ]


TUNNEL_PROBE = """
import http.client, json, os, sys, urllib.parse
proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
out = {}
for target in json.loads(sys.argv[1]):
    host, port = target.rsplit(":", 1)
    connection = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=10)
    connection.set_tunnel(host, int(port))
    try:
        connection.request("GET", "/")
        out[target] = connection.getresponse().read().decode()
    except OSError as exc:
        out[target] = str(exc)
    connection.close()
try:
    http.client.HTTPConnection("localhost", int(sys.argv[2]), timeout=3).request("GET", "/")
    out["direct"] = "connected"
except OSError as exc:
    out["direct"] = type(exc).__name__
print(json.dumps(out))
"""


def _tunnel(start, port: int, targets: list[str], events: list) -> dict[str, str]:
    process = start(
        ["python3", "-c", TUNNEL_PROBE, json.dumps(targets), str(port)],
        egress_domains=("localhost", "*.example.org"),
        on_egress=events.append,
    )
    lines = list(process.stdout_lines())
    assert process.wait(30) == 0, process.stderr_tail()
    return json.loads(lines[-1])


def test_egress_lets_allowlisted_domains_through_the_proxy_and_logs_every_connection(
    start, hello_server, settings, caplog
):
    settings.OZWEB_EGRESS_PORTS = [hello_server]
    settings.OZWEB_EGRESS_ALLOW_PRIVATE = True  # the allowed target is on this host's loopback
    events: list[dict] = []
    allowed = f"localhost:{hello_server}"
    targets = [allowed, f"127.0.0.1:{hello_server}", "example.com:443", "localhost:5432"]
    results = _tunnel(start, hello_server, targets, events)

    assert results[allowed] == f"hello via localhost:{hello_server}"
    for refused in targets[1:]:
        assert "403" in results[refused], results
    assert results["direct"] != "connected"  # the proxy is the only way out
    outcome = {f"{e['host']}:{e['port']}": (e["allowed"], e["reason"]) for e in events}
    assert outcome == {
        allowed: (True, ""),
        f"127.0.0.1:{hello_server}": (False, "not in the agent's egress_domains"),
        "example.com:443": (False, "not in the agent's egress_domains"),
        "localhost:5432": (False, f"port 5432 is not an egress port ({hello_server})"),
    }
    assert f"egress localhost:{hello_server} allowed" in caplog.text
    assert "egress example.com:443 REFUSED" in caplog.text


def test_egress_never_reaches_the_hosts_own_addresses_by_default(start, hello_server, settings):
    settings.OZWEB_EGRESS_PORTS = [hello_server]
    events: list[dict] = []
    results = _tunnel(start, hello_server, [f"localhost:{hello_server}"], events)
    assert "403" in results[f"localhost:{hello_server}"]
    assert [e["reason"] for e in events] == [
        "resolves only to loopback, private or link-local addresses"
    ]


def test_the_relay_sockets_go_with_the_container(start, docker_client, tmp_path: Path):
    process = start(["true"], egress_domains=())
    attrs = docker_client.api.inspect_container(process.container_id)
    folder = Path(next(m["Source"] for m in attrs["Mounts"] if m["Destination"] == "/run/ozweb"))
    assert sorted(p.name for p in folder.iterdir()) == ["egress.sock", "ozweb.sock"]
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}
    assert process.wait(10) == 0
    process.cleanup()
    assert not folder.exists()


POLLER = """
import os, sys, time, urllib.request
for _ in range(600):
    try:
        body = urllib.request.urlopen(os.environ["OZWEB_URL"] + "/", timeout=2).read().decode()
    except OSError as exc:
        body = "unreachable"
    print(body, flush=True)
    time.sleep(0.05)
"""


def test_a_worker_that_takes_over_a_run_serves_its_relay_again(
    start, docker_sandbox, hello_server, settings, run_id
):
    settings.OZWEB_AGENT_API_URL = f"http://127.0.0.1:{hello_server}"
    url = container_endpoint(settings.OZWEB_AGENT_API_URL).url
    original = start(["python3", "-c", POLLER], env={"OZWEB_URL": url})
    lines = original.stdout_lines()
    assert next(lines) == f"hello via 127.0.0.1:{hello_server}"
    # The worker dies: its sockets stop answering (the folder stays, as after a crash).
    relay = original._relay
    for server in relay._servers:
        relay_hub_call(server.close)
    assert _next_matching(lines, "unreachable")

    found = docker_sandbox.find(run_id)
    assert found is not None and found._relay is not None
    assert found._relay.directory == relay.directory
    assert _next_matching(found.stdout_lines(), f"hello via 127.0.0.1:{hello_server}", after=1)
    found.kill()
    assert found.wait(10) == 137
    assert original.wait(10) == 137  # remembered, for the fixture's own cleanup
    found.cleanup()
    assert not relay.directory.exists()


def relay_hub_call(function) -> None:
    from apps.runs.sandboxes.relay import hub

    async def call() -> None:
        function()

    hub().call(call())


def _next_matching(lines, expected: str, after: int = 0) -> bool:
    """Whether `expected` comes within the next 200 lines (after `after` lines of it have)."""
    seen = 0
    for _, line in zip(range(2000), lines, strict=False):
        if line == expected:
            seen += 1
            if seen > after:
                return True
    return False
