"""The product default end to end: a live ozweb (daphne, in-process worker, Docker, no network
override) runs command agents whose containers have no network but the worker's relay. From
inside a run, the host's PostgreSQL and Redis and its other addresses are out of reach while
every agent verb works, through the `oz` CLI and through MCP; an "egress" agent's allowlisted
connection goes through the proxy, a refused one is logged in the run's events."""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import threading
import time
import urllib.error
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import Daphne, base_env, free_port, manage

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

PROBE = r"""
import json, os, socket, subprocess, sys, urllib.request

def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__

def oz(*args):
    done = subprocess.run(["oz", *args], capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise SystemExit(f"oz {' '.join(args)} failed: {done.stderr}")
    return json.loads(done.stdout)

def mcp(body, session=None):
    headers = {
        "Authorization": "Bearer " + os.environ["OZWEB_TOKEN"],
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    if session:
        headers["Mcp-Session-Id"] = session
    request = urllib.request.Request(
        os.environ["OZWEB_URL"].rstrip("/") + "/mcp/", json.dumps(body).encode(), headers
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        session = response.headers.get("Mcp-Session-Id") or session
    if not text.strip():
        return None, session
    data = [line[5:] for line in text.splitlines() if line.startswith("data:")]
    return json.loads(data[-1] if data else text), session

targets = [("127.0.0.1", 5432), ("127.0.0.1", 6379)]
targets += [(a, p) for a in sys.argv[1].split() for p in (5432, 6379, int(sys.argv[2]))]
out = {"unreachable": {f"{h}:{p}": reach(h, p) for h, p in targets}}
out["whoami"] = oz("whoami")["handle"]
out["team"] = sorted(a["handle"] for a in oz("team")["agents"])
out["post"] = oz("post", "posted from a sealed sandbox")["body"]
out["send"] = bool(oz("send", "@" + sys.argv[3], "to a human")["id"])
oz("mem", "set", "sealed", "yes")
out["mem"] = oz("mem", "get", "sealed")["value"]
oz("put", "notes.txt", "--text", "artifact from inside")
out["get"] = oz("get", "notes.txt")["name"]
out["artifacts"] = json.dumps(oz("artifacts"))
child = oz("delegate", "@helper", "say helped", "--wait", "--timeout", "90")
out["delegate"] = child["status"]
out["run"] = oz("run", str(child["run"]))["status"]
out["inbox"] = isinstance(oz("inbox"), dict)
init, session = mcp({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-03-26", "capabilities": {},
    "clientInfo": {"name": "probe", "version": "1"}}})
mcp({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
tools, _ = mcp({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
out["mcp"] = sorted(t["name"] for t in tools["result"]["tools"])
print("PROBE " + json.dumps(out))
"""

FETCH = r"""
import http.client, os, sys, urllib.parse
proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
for host, port in (("localhost", int(sys.argv[1])), ("example.com", 443)):
    connection = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=10)
    connection.set_tunnel(host, port)
    try:
        connection.request("GET", "/")
        print("FETCH", host, connection.getresponse().read().decode())
    except OSError as exc:
        print("FETCH", host, exc)
"""


def _program(script: str, *args: str) -> dict[str, Any]:
    """Agent fields that write `script` to the container's /tmp (a setup command) and run it."""
    encoded = base64.b64encode(script.encode()).decode()
    quoted = " ".join(f"'{a}'" for a in args)
    return {
        "setup_commands": [f"echo {encoded} | base64 -d > /tmp/probe.py"],
        "command": f"python3 /tmp/probe.py {quoted}",
    }


@dataclass
class Live:
    daphne: Daphne
    token: str
    team: int

    def get(self, path: str) -> Any:
        return self.daphne.get_json(f"/api/v1{path}", token=self.token)

    def post(self, path: str, data: dict[str, Any]) -> Any:
        try:
            return self.daphne.post_json(f"/api/v1{path}", data, token=self.token)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"POST {path}: {exc.code} {exc.read()[:2000]!r}") from None

    def run_of(self, thread: dict[str, Any], handle: str) -> dict[str, Any]:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            runs = self.get(f"/runs/?thread={thread['id']}&limit=50")["results"]
            mine = [r for r in runs if r["agent_handle"] == handle]
            if mine and mine[-1]["status"] in ("succeeded", "failed", "cancelled", "timed_out"):
                return mine[-1]
            time.sleep(0.25)
        raise AssertionError(f"no finished run of @{handle}; daphne log:\n{self.daphne.log()}")


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        body = b"hello from an allowlisted host"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def target() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def live(tmp_path_factory, harness_image: str, target: int) -> Iterator[Live]:
    tmp_path: Path = tmp_path_factory.mktemp("isolated")
    port = free_port()
    env = base_env(  # no OZWEB_SANDBOX_NETWORK: the product default
        OZWEB_VAR_DIR=str(tmp_path / "var"),
        OZWEB_RUN_DISPATCH="inprocess",
        OZWEB_SANDBOX="docker",
        OZWEB_HARNESS_IMAGE=harness_image,
        OZWEB_AGENT_API_URL=f"http://127.0.0.1:{port}",
        OZWEB_INSTANCE=f"isolated-{uuid.uuid4().hex[:8]}",
        OZWEB_EGRESS_PORTS=str(target),
        OZWEB_EGRESS_ALLOW_PRIVATE="true",  # the allowlisted target is on this host's loopback
    )
    manage(env, "migrate", "--noinput", "-v0")
    token = manage(env, "create_api_user", "sealer", "--team", "Sealed").strip().splitlines()[-1]
    daphne = Daphne(env, port=port).start(tmp_path)
    try:
        team = daphne.get_json("/api/v1/teams/", token=token)["results"][0]["id"]
        yield Live(daphne, token, team)
    finally:
        daphne.stop()


def _host_addresses() -> str:
    done = subprocess.run(["hostname", "-I"], capture_output=True, text=True)
    return " ".join(a for a in done.stdout.split() if "." in a and not a.startswith("127."))


def test_a_sealed_run_reaches_only_ozweb_and_every_verb_works(live: Live):
    port = live.daphne.port
    helper = {"handle": "helper", "harness": "command", "command": "echo helped"}
    live.post(f"/teams/{live.team}/agents/", helper)
    prober = live.post(
        f"/teams/{live.team}/agents/",
        {
            "handle": "prober",
            "harness": "command",
            **_program(PROBE, _host_addresses(), str(port), "sealer"),
        },
    )
    assert prober["network"] == "ozweb" and prober["egress_domains"] == []
    thread = live.post(f"/teams/{live.team}/threads/", {"name": "sealed"})
    live.post(f"/threads/{thread['id']}/messages/", {"body": "@prober probe"})

    run = live.run_of(thread, "prober")
    assert run["status"] == "succeeded", (run.get("error"), run.get("stderr_tail"))
    messages = live.get(f"/threads/{thread['id']}/messages/?limit=200")["results"]
    line = next(m["body"] for m in messages if m["body"].startswith("PROBE "))
    probe = json.loads(line.removeprefix("PROBE "))
    assert probe["unreachable"] and "connected" not in probe["unreachable"].values(), probe
    assert probe["whoami"] == "prober"
    assert {"helper", "prober"} <= set(probe["team"])
    assert probe["post"] == "posted from a sealed sandbox"
    assert probe["send"] and probe["inbox"]
    assert probe["mem"] == "yes"
    assert probe["get"] == "notes.txt" and "notes.txt" in probe["artifacts"]
    assert (probe["delegate"], probe["run"]) == ("succeeded", "succeeded")
    assert {"post_message", "delegate"} <= set(probe["mcp"]), probe["mcp"]


def test_an_egress_agent_goes_out_through_the_allowlist_proxy_only(live: Live, target: int):
    with pytest.raises(AssertionError, match="not a host name"):
        bad = {"handle": "bad", "harness": "command", "command": "true", "network": "egress"}
        live.post(f"/teams/{live.team}/agents/", {**bad, "egress_domains": ["http://x/"]})
    fetcher = live.post(
        f"/teams/{live.team}/agents/",
        {
            "handle": "fetcher",
            "harness": "command",
            **_program(FETCH, str(target)),
            "network": "egress",
            "egress_domains": ["LOCALHOST", "*.pypi.org"],
        },
    )
    assert fetcher["egress_domains"] == ["localhost", "*.pypi.org"]
    thread = live.post(f"/teams/{live.team}/threads/", {"name": "egress"})
    live.post(f"/threads/{thread['id']}/messages/", {"body": "@fetcher fetch"})

    run = live.run_of(thread, "fetcher")
    assert run["status"] == "succeeded", (run.get("error"), run.get("stderr_tail"))
    messages = live.get(f"/threads/{thread['id']}/messages/?limit=200")["results"]
    output = "\n".join(m["body"] for m in messages)
    assert "FETCH localhost hello from an allowlisted host" in output
    assert "FETCH example.com Tunnel connection failed: 403" in output
    events = live.get(f"/runs/{run['id']}/events/?limit=500")
    egress = [e["data"]["message"] for e in events if "egress" in e["data"]]
    assert egress == [
        f"egress: localhost:{target} allowed",
        "egress: example.com:443 refused (not in the agent's egress_domains)",
    ]
