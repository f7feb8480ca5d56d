"""Real ozweb processes for end-to-end tests: `manage.py` steps and daphne on a free port."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a fresh install: none of the caller's ozweb settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OZWEB_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update({"OZWEB_SECRET_KEY": secrets.token_urlsafe(32), "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def create_user(env: dict[str, str], username: str, password: str, team: str) -> str:
    """A user in `team` with a password (for browsers) and an API token (returned)."""
    token = manage(env, "create_api_user", username, "--team", team).strip().splitlines()[-1]
    code = (
        "from django.contrib.auth import get_user_model as g; "
        f"u = g().objects.get(username={username!r}); u.set_password({password!r}); u.save()"
    )
    manage(env, "shell", "-c", code)
    return token


@dataclass
class Daphne:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> Daphne:
        self.log_path = log_dir / f"daphne-{self.port}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "ozweb.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                health = self.get_json("/healthz")
                if health.get("ok"):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"daphne did not become healthy:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""

    def get_json(self, path: str, token: str | None = None) -> Any:
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Token {token}")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 -- loopback
            return json.loads(response.read())

    def post_json(self, path: str, data: dict[str, Any], token: str) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(data).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback
            return json.loads(response.read())
