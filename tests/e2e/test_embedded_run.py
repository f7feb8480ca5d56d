"""The README's first command: `make run` serves the demo on SQLite with no other service."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.e2e.servers import ROOT, Daphne, base_env, free_port, manage


def test_make_run_serves_the_seeded_demo_and_prints_the_login(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(OZWEB_VAR_DIR=str(tmp_path / "var"))
    log = tmp_path / "run.log"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        login = _wait_for_login(log, process, f"{base}/healthz")
        assert f"ozweb is at {base}/" in log.read_text()

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        health = opener.open(f"{base}/healthz", timeout=5).read().decode()
        assert '"vendor": "sqlite"' in health and "EmbeddedChannelLayer" in health

        form = opener.open(f"{base}/login/", timeout=5).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode(
            {"username": login[0], "password": login[1], "csrfmiddlewaretoken": csrf}
        ).encode()
        request = urllib.request.Request(f"{base}/login/", data=data, headers={"Referer": base})
        dashboard = opener.open(request, timeout=5).read().decode()
        for expected in ("Demo", "#general", "@coder", "@shell", "@reviewer", "Welcome to"):
            assert expected in dashboard

        # The demo's model-free agent does real work (in Docker when an engine answers).
        token = manage(env, "create_api_user", login[0], "--team", "Demo").strip().split()[-1]
        server = Daphne(env, port=port)
        general = server.get_json("/api/v1/teams/1/threads/", token=token)["results"][-1]
        server.post_json(
            f"/api/v1/threads/{general['id']}/messages/",
            {"body": "@shell `echo demo-works`"},
            token,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = server.get_json("/api/v1/runs/", token=token)["results"]
            if runs and runs[0]["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.3)
        assert runs[0]["status"] == "succeeded", runs[0]
        bodies = server.get_json(f"/api/v1/threads/{general['id']}/messages/", token=token)
        assert any(m["body"].strip() == "demo-works" for m in bodies["results"])
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def _wait_for_login(log: Path, process: subprocess.Popen, health: str) -> tuple[str, str]:
    """The printed login, once the server answers (a first run may still be installing)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        match = re.search(r"Log in as (\S+) with password (\S+)", text)
        if match and _answers(health):
            return match.group(1), match.group(2)
        if process.poll() is not None:
            raise AssertionError(f"make run exited:\n{text[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"make run did not come up:\n{log.read_text()[-3000:]}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- loopback
            return response.status == 200
    except OSError:
        return False
