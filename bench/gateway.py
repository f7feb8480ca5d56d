"""Model gateway benchmark: streamed model answers through ozweb's gateway vs. straight to the
scripted model server, in the same run.

    .venv/bin/python -m bench.gateway [--requests 400] [--warmup 50]

Spec: the added time to first byte (p50/p99) and the added CPU per request of a streamed
answer through `/gateway/<provider id>/v1/messages`, and the stream unchanged. Target on this
machine: p99 added time to first byte < 5 ms.

It starts the real app as the other benchmarks do (`bench.stack.Stack`: one `daphne` on
127.0.0.1, a fresh SQLite database, embedded mode) and the scripted model server
(tests/support/model_server.py) in this process. Through the REST API it adds an Anthropic
provider whose base URL is that server; with `manage.py shell` it adds a claude agent and a
run marked running with its run token (no container: the benchmark is the harness). Then it
sends `--requests` pairs of the same streamed Messages request (`"stream": true`, a text
answer of ~20 SSE events), alternating: one straight to the server, one through the gateway
with the run token as `x-api-key`, each on its own keep-alive connection, one at a time.

Time to first byte is from sending the request to the first byte of the body (the first SSE
event); "added" compares the two paths' percentiles. CPU per request is daphne's CPU time
(utime + stime from /proc) over the gateway requests, divided by their number: the direct
requests never touch daphne. Every gateway answer is compared with the direct answer sent
just before it, byte for byte once the per-answer message id is masked; the run's usage as the
gateway recorded it is checked against what the server reported.

Everything listens on 127.0.0.1; daphne and the temp dir are removed on exit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import time
from dataclasses import dataclass, field

from bench.stack import (
    HOST,
    Stack,
    log,
    machine_line,
    percentile,
    proc_cpu_seconds,
    stack_options,
    wait_for_quiet,
)
from tests.support.model_server import INPUT_TOKENS, OUTPUT_TOKENS, ModelServer

TARGET_ADDED_P99_MS = 5.0
TEXT = " ".join(f"word{i}" for i in range(16))
BODY = json.dumps(
    {
        "model": "claude-bench",
        "stream": True,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say sixteen words."}],
    }
).encode()
MESSAGE_ID = re.compile(rb"msg_[0-9a-f]+")

SETUP = """
import json
from apps.agents.models import Agent
from apps.providers.models import Provider
from apps.runs.models import Run
from apps.runs.tokens import token_issue
provider = Provider.objects.get(pk={provider_id})
agent = Agent.objects.create(team=provider.team, handle="bench", harness="claude")
run = Run.objects.create(team=provider.team, agent=agent, prompt="bench", harness="claude",
                         status="running")
print(json.dumps({{"run": run.pk, "token": token_issue(run=run)}}))
"""

USAGE = """
import json
from apps.gateway.selectors import run_usage
print(json.dumps(run_usage(run_id={run_id})))
"""


@dataclass
class Path:
    name: str
    host: str
    port: int
    path: str
    headers: dict[str, str]
    ttfb_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    conn: http.client.HTTPConnection | None = None

    def send(self) -> bytes:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        started = time.perf_counter()
        self.conn.request("POST", self.path, body=BODY, headers=self.headers)
        response = self.conn.getresponse()
        first = response.read1(65536)
        ttfb = time.perf_counter() - started
        rest = response.read()
        total = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {response.status}: {first + rest!r}"[:500])
        self.ttfb_ms.append(ttfb * 1000)
        self.total_ms.append(total * 1000)
        return first + rest


def masked(body: bytes) -> bytes:
    return MESSAGE_ID.sub(b"msg_X", body)


def stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return percentile(ordered, 50), percentile(ordered, 99)


def run(args: argparse.Namespace) -> int:
    stack = Stack("gateway", args)
    # The run is marked running without an executor: the reconciler must leave it alone.
    stack.env["OZWEB_RUN_STALE_SECONDS"] = "86400"
    server = ModelServer().start()
    try:
        api = stack.start()
        status, teams = api.request("GET", "/api/v1/teams/")
        team_id = teams["results"][0]["id"]
        status, provider = api.request(
            "POST",
            f"/api/v1/teams/{team_id}/providers/",
            {"name": "scripted", "kind": "anthropic", "base_url": server.url,
             "api_key": "sk-bench-provider-key"},
        )  # fmt: skip
        if status != 201:
            raise RuntimeError(f"creating the provider: {status} {provider}")
        setup = json.loads(
            stack.manage("shell", "-c", SETUP.format(provider_id=provider["id"])).splitlines()[-1]
        )
        headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
        direct = Path("direct", HOST, server.port, "/v1/messages", {**headers, "x-api-key": "k"})
        gateway = Path(
            "gateway",
            HOST,
            stack.port,
            f"/gateway/{provider['id']}/v1/messages",
            {**headers, "x-api-key": setup["token"]},
        )
        server.policy = lambda protocol, body: None  # the default: a text answer
        log(f"warm-up: {args.warmup} pairs")
        for _ in range(args.warmup):
            direct.send()
            gateway.send()
        direct.ttfb_ms.clear(), direct.total_ms.clear()
        gateway.ttfb_ms.clear(), gateway.total_ms.clear()
        quiet = wait_for_quiet(args.quiet_wait)
        log(f"measuring {args.requests} pairs (machine quiet after {quiet:.1f} s)")
        differing = 0
        cpu = 0.0
        for _ in range(args.requests):
            straight = direct.send()
            before = proc_cpu_seconds(stack.pid)
            through = gateway.send()
            cpu += proc_cpu_seconds(stack.pid) - before
            differing += masked(straight) != masked(through)
        usage = json.loads(
            stack.manage("shell", "-c", USAGE.format(run_id=setup["run"])).splitlines()[-1]
        )
        answers = args.warmup + args.requests
        print(report(args, direct, gateway, cpu, differing, usage, answers))
        ok = stats(gateway.ttfb_ms)[1] - stats(direct.ttfb_ms)[1] < TARGET_ADDED_P99_MS
        return 0 if ok and not differing else 1
    finally:
        server.stop()
        stack.close()


def report(
    args: argparse.Namespace,
    direct: Path,
    gateway: Path,
    cpu: float,
    differing: int,
    usage: dict[str, int],
    answers: int,
) -> str:
    d50, d99 = stats(direct.ttfb_ms)
    g50, g99 = stats(gateway.ttfb_ms)
    t50, t99 = stats(direct.total_ms)
    u50, u99 = stats(gateway.total_ms)
    expected = (answers * INPUT_TOKENS, answers * OUTPUT_TOKENS)
    recorded = (usage["input_tokens"], usage["output_tokens"])
    lines = [
        f"machine: {machine_line()}",
        f"{args.requests} streamed Messages answers each way, alternating, one at a time",
        "",
        f"{'':26}{'p50 ms':>9}{'p99 ms':>9}",
        f"{'TTFB direct':26}{d50:9.2f}{d99:9.2f}",
        f"{'TTFB through the gateway':26}{g50:9.2f}{g99:9.2f}",
        f"{'added TTFB':26}{g50 - d50:9.2f}{g99 - d99:9.2f}"
        f"   (target p99 < {TARGET_ADDED_P99_MS:g} ms: "
        f"{'met' if g99 - d99 < TARGET_ADDED_P99_MS else 'MISSED'})",
        f"{'whole answer direct':26}{t50:9.2f}{t99:9.2f}",
        f"{'whole answer gateway':26}{u50:9.2f}{u99:9.2f}",
        f"{'ratio gateway/direct TTFB':26}{_ratio(g50, d50):9.2f}{_ratio(g99, d99):9.2f}",
        "",
        f"daphne CPU per gateway request: {cpu / args.requests * 1000:.2f} ms",
        f"streams unchanged: {args.requests - differing}/{args.requests} byte-identical "
        "(message id masked)",
        f"usage recorded {recorded[0]} in / {recorded[1]} out over {usage['requests']} requests; "
        f"the server reported {expected[0]} / {expected[1]} over {answers}: "
        f"{'equal' if recorded == expected and usage['requests'] == answers else 'DIFFERENT'}",
    ]
    return "\n".join(lines)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--requests", type=int, default=400, help="measured pairs")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured pairs first")
    stack_options(parser, quiet_wait=20, runs=False)
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 100_000 and 0 <= args.warmup <= 10_000):
        parser.error("requests 1–100000, warmup 0–10000")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
