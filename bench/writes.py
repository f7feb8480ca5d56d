"""Write benchmark: server CPU per write against a bare ASGI request, measured in the same run.

    .venv/bin/python -m bench.writes [--requests 400] [--rate 40] [--db sqlite|postgres]

It starts two servers under `daphne`, the same way (`bench.stack.start_daphne`), on this
machine: the embedded ozweb (`bench.stack.Stack`: a fresh SQLite database, or a throwaway
PostgreSQL one with `--db postgres`) and `bench.references:bare_asgi` (reads the body, parses
its JSON, answers 201). With the same client (keep-alive `http.client`, `--concurrency`
threads) on the same open-loop schedule (`--rate` a second, `--requests` each, after
`--warmup` unmeasured ones) it sends, in turn:

* `bare`: `POST /` to the bare ASGI app, with the same JSON body: the reference;
* `rest`: a human's `POST /api/v1/threads/{id}/messages/` with an API token;
* `htmx`: the composer's post, `POST /threads/{id}/messages/` with a session cookie, the CSRF
  token and `HX-Request: true` (the page's partial comes back);
* `agent`: an agent's `POST /api/v1/agent/send_message/` with a run token, to another agent
  that has a live run in the thread (both runs are marked running through `manage.py shell`,
  and the sender's gets a fresh token; the benchmark starts no process for them, so what is
  measured is the door, the token check, the message and its delivery to a live run).

For each it reports daphne's CPU per request (utime+stime from /proc over the measured
window), latency p50/p99 and errors, and the ratio to the bare request. Targets (issue 12):
`rest` and `htmx` at most 10× the bare request's CPU, `agent` at most 4×.

Everything listens on 127.0.0.1; servers and temp dirs are removed on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bench.stack import (
    HOST,
    Api,
    CpuWatch,
    Stack,
    fmt,
    free_port,
    log,
    machine_line,
    open_loop,
    percentile,
    start_daphne,
    stop,
    table,
    wait_for_quiet,
)

TARGETS = {"rest": 10.0, "htmx": 10.0, "agent": 4.0}
KINDS = ("bare", "rest", "htmx", "agent")

# Marks a run of the bench agent running, with a fresh token, and prints the token. The run
# has no process: the benchmark measures the door, not an agent.
AGENT_RUN = """
from apps.agents.models import Agent
from apps.runs.models import Run
from apps.runs.tokens import token_issue
from apps.threads.models import Thread
from django.contrib.auth.models import User
from django.utils import timezone
thread = Thread.objects.get(pk={thread})
runs = []
for handle in ("bench-writer", "bench-reader"):
    agent = Agent.objects.create(team=thread.team, handle=handle, display_name=handle,
                                 harness="command", command="true", run_timeout_seconds=3600)
    runs.append(Run.objects.create(team=thread.team, agent=agent, thread=thread, prompt="bench",
                                   status="running", started_at=timezone.now(),
                                   heartbeat_at=timezone.now()))
run = runs[0]
user = User.objects.get(username="bench")
user.set_password("{password}")
user.save()
print(token_issue(run=run))
"""


@dataclass
class Result:
    kind: str
    requests: int = 0
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    cpu_s: float = float("nan")
    db_cpu_s: float = float("nan")  # PostgreSQL's backends (nan on SQLite: it is in-process)

    @property
    def us_per_request(self) -> float:
        return 1e6 * self.cpu_s / self.ok if self.ok else float("nan")

    @property
    def db_us_per_request(self) -> float:
        return 1e6 * self.db_cpu_s / self.ok if self.ok else float("nan")


class Session:
    """A logged-in browser: session cookie and CSRF token, over one keep-alive connection
    per thread (via `Api`)."""

    def __init__(self, api: Api, username: str, password: str) -> None:
        self.api = api
        conn = http.client.HTTPConnection(HOST, api.port, timeout=30)
        conn.request("GET", "/login/")
        response = conn.getresponse()
        page = response.read().decode()
        cookies = self._cookies(response)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if token is None:
            raise RuntimeError("no CSRF token on the login page")
        form = urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
        )
        conn.request(
            "POST",
            "/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                "Referer": f"http://{HOST}:{api.port}/login/",
            },
        )
        response = conn.getresponse()
        response.read()
        cookies.update(self._cookies(response))
        conn.close()
        if response.status != 302 or "sessionid" not in cookies:
            raise RuntimeError(f"login failed: HTTP {response.status}")
        self.cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.csrf = cookies["csrftoken"]

    @staticmethod
    def _cookies(response: http.client.HTTPResponse) -> dict[str, str]:
        out = {}
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                out[key.strip()] = rest.split(";", 1)[0]
        return out

    def post_form(self, path: str, fields: dict[str, str]) -> int:
        conn = self.api._conn()
        conn.request(
            "POST",
            path,
            body=urlencode(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": self.cookie,
                "X-CSRFToken": self.csrf,
                "HX-Request": "true",
                "Referer": f"http://{HOST}:{self.api.port}/",
            },
        )
        response = conn.getresponse()
        response.read()
        return response.status


def measure(kind: str, call: Any, pid: int, args: argparse.Namespace) -> Result:
    """`call(i) -> status` on the open-loop schedule; daphne `pid`'s CPU over the window."""
    result = Result(kind=kind)
    expect = 201 if kind in ("bare", "rest") else 200

    def job(i: int, due_ns: int) -> tuple[int, float, str]:
        t = time.perf_counter()
        try:
            status = call(i)
        except (OSError, http.client.HTTPException) as exc:
            return 0, (time.perf_counter() - t) * 1000, f"{type(exc).__name__}: {exc}"
        return status, (time.perf_counter() - t) * 1000, ""

    with ThreadPoolExecutor(args.concurrency, thread_name_prefix=kind) as pool:
        open_loop(pool, args.warmup, args.rate, job)
        wait_for_quiet(args.quiet_wait)
        watched: dict[str, list[int] | str] = {"server": [pid]}
        if args.db == "postgres":
            watched["db"] = "postgres"
        cpu = CpuWatch(watched)
        cpu.begin()
        outcomes = open_loop(pool, args.requests, args.rate, job)
        cpu.end()
    result.requests = len(outcomes)
    for status, ms, error in outcomes:
        if status == expect:
            result.ok += 1
            result.ms.append(ms)
        else:
            result.errors += 1
            if len(result.error_samples) < 3:
                result.error_samples.append(error or f"HTTP {status}")
    result.ms.sort()
    result.cpu_s = cpu.used.get("server", float("nan"))
    result.db_cpu_s = cpu.used.get("db", float("nan"))
    return result


def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    stack = Stack("writes", args, postgres=args.db == "postgres")
    # The bench's runs have no process to beat their heartbeat: the reconciler must not end
    # them mid-measurement.
    stack.env["OZWEB_RUN_STALE_SECONDS"] = "86400"
    bare = None
    try:
        api = stack.start()
        team = api.team_id()
        thread = api.create_thread(team, "bench-writes")
        password = "bench-writes-password"
        token = stack.manage("shell", "-c", AGENT_RUN.format(thread=thread, password=password))
        run_token = token.strip().splitlines()[-1]

        bare_port = free_port()
        bare = start_daphne(
            "bench.references:bare_asgi", bare_port, cwd=stack.src, env=stack.env, logs=stack.tmp
        )
        bare_api = Api(bare_port, token="")
        deadline = time.monotonic() + 30
        while True:
            try:
                if bare_api.request("GET", "/")[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise RuntimeError("the bare ASGI app did not answer") from None
                time.sleep(0.1)

        session = Session(api, "bench", password)
        body = "bench write {i}: a short message, as a human would type it"
        calls = {
            "bare": (bare.pid, lambda i: bare_api.request("POST", "/", {"body": body})[0]),
            "rest": (
                stack.pid,
                lambda i: api.request(
                    "POST", f"/api/v1/threads/{thread}/messages/", {"body": body}
                )[0],
            ),
            "htmx": (
                stack.pid,
                lambda i: session.post_form(f"/threads/{thread}/messages/", {"body": body}),
            ),
            "agent": (
                stack.pid,
                lambda i: api.request(
                    "POST",
                    "/api/v1/agent/send_message/",
                    {"to": "bench-reader", "body": body},
                    authorization=f"Bearer {run_token}",
                )[0],
            ),
        }
        for kind in args.kinds:
            pid, call = calls[kind]
            log(f"{kind}: {args.requests} requests at {args.rate:g}/s")
            results.append(measure(kind, call, pid, args))
    except Exception as exc:
        stack.note_error("writes", exc, notes := [])
        print("\n".join(notes), file=sys.stderr)
    finally:
        if bare is not None:
            stop([bare])
        stack.close()
    return results


def ratio(r: Result, results: list[Result]) -> float:
    """CPU per request over the bare ASGI request's, measured in the same run."""
    bare = next((x for x in results if x.kind == "bare"), None)
    if bare is None or r is bare:
        return float("nan")
    return r.us_per_request / bare.us_per_request


def verdict(r: Result, results: list[Result]) -> str:
    if r.errors or not r.ok:
        return "FAIL (errors)"
    if r.kind not in TARGETS:
        return "reference"
    return "PASS" if ratio(r, results) <= TARGETS[r.kind] else "FAIL"


def report(results: list[Result], args: argparse.Namespace) -> str:
    rows = [
        ("write", [r.kind for r in results]),
        ("requests ok / errors", [f"{r.ok} / {r.errors}" for r in results]),
        ("latency p50 ms", [fmt(percentile(r.ms, 50)) for r in results]),
        ("latency p99 ms", [fmt(percentile(r.ms, 99)) for r in results]),
        ("server CPU µs/request", [fmt(r.us_per_request, "{:.0f}") for r in results]),
        ("÷ bare ASGI request", [fmt(ratio(r, results), "{:.1f}×") for r in results]),
        ("PostgreSQL CPU µs/request", [fmt(r.db_us_per_request, "{:.0f}") for r in results]),
        (
            "target",
            [f"≤{TARGETS[r.kind]:g}×" if r.kind in TARGETS else "-" for r in results],
        ),
        ("verdict", [verdict(r, results) for r in results]),
    ]
    lines = [
        f"writes bench: {args.requests} requests each at {args.rate:g}/s, "
        f"{args.concurrency} connections, database {args.db}",
        machine_line(),
        *table(rows),
    ]
    for r in results:
        if r.error_samples:
            lines.append(f"{r.kind}: errors e.g. {r.error_samples}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.writes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4, help="HTTP connections")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--kinds", default=",".join(KINDS), help="bare,rest,htmx,agent")
    parser.add_argument("--quiet-wait", type=float, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (daphne log)")
    parser.add_argument("--profile", metavar="PY_SPY", help=argparse.SUPPRESS)
    parser.add_argument(
        "--source", default="worktree", help="'worktree' (default) or a git ref to run instead"
    )
    args = parser.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not args.kinds or set(args.kinds) - set(KINDS):
        parser.error(f"--kinds takes {','.join(KINDS)}")
    if not (1 <= args.requests <= 100_000 and 0 < args.rate <= 2000):
        parser.error("requests 1–100000, rate 0–2000")
    results = run(args)
    print(report(results, args))
    ok = bool(results) and all(verdict(r, results) in ("PASS", "reference") for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
