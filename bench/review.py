"""Review benchmark: the review page of a big change, and a review comment → a running agent.

    .venv/bin/python -m bench.review [--files 200] [--lines 100] [--repeat 5] [--reviews 60]

Spec: a change of 200 files and 20,000 changed lines. (1) The review page's server-side render
time and size against the time `git diff` takes for the same change, measured in the same run
(target: under 10×). (2) Comment → delivered to a running agent, p99 (target: under 250 ms).

It runs ozweb in this process (a fresh SQLite database and var dir in a temp dir, embedded
channel layer, local-process sandbox, runs executed in a thread as the in-process worker does)
and talks to it with Django's test client, so the figures are the server's own work without a
network in between:

1. A bare repository (the real `git` CLI) whose `main` has `--files` Python files of
   2×`--lines` lines; the change's branch rewrites `--lines`/2 lines of each (so each file has
   --lines changed lines: half removed, half added; 200 × 100 = 20,000). The Change and its
   ChangeVersion rows are written as the repos service would (files from `git diff --numstat`).
2. `git diff <base> <head>` (the diff the page shows) `--repeat` times: its median.
3. `GET /changes/{id}/` as a logged-in member, unified and side by side: the first time with
   every cache empty (cold: the page lexes code for at most OZWEB_REVIEW_HIGHLIGHT_MS and shows
   the rest plain, marked `data-hl`); then each plain file's colours as the page's script
   fetches them on scrolling (`/changes/{id}/highlight/?file=N`: pygments lexes that file);
   then `--repeat` times warm (highlighting from the cache: a version never changes). Time,
   bytes, and how many files the first view left plain.
4. A `command` agent (stdlib Python below) runs in the change's thread and stamps
   `time.time_ns()` when each line arrives on its stdin (into a file, not its stdout: printing
   would add feed writes to the path measured). `--reviews` times: POST a line comment, then
   POST a `request_changes` review (which sends the comment to the agent); latency = the
   agent's stamp − the time just before the comment POST (both calls and the delivery), and
   − the time just before the review POST (the review → agent hop alone).

Everything is on 127.0.0.1 (there is no network at all) and in a temp dir removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stack import log, machine_line, percentile

TARGET_RATIO = 10.0
TARGET_P99_MS = 250.0

AGENT = r"""
import os, sys, time
out = open(os.environ["BENCH_RECV"], "a", buffering=1)
out.write("ready 0\n")
for line in sys.stdin:
    now = time.time_ns()
    marker = line.split("BENCH-", 1)[1].split(" ", 1)[0] if "BENCH-" in line else "-"
    out.write("%s %d\n" % (marker, now))
    if "BENCH-QUIT" in line:
        break
"""


def source_file(index: int, lines: int, *, changed: bool) -> str:
    """Python with calls, strings and numbers (something for the lexer to do): blocks of four
    lines, two of which change in every other block, so `lines` lines change per file."""
    out = []
    for n in range(1, lines // 2 + 1):
        edit = changed and n % 2 == 0
        body = "value ** 2 - 1.5" if edit else "value * 2 + math.pi"
        out += [
            f"def compute_{index}_{n}(value: float) -> float:",
            f'    """Step {n}: {"changed" if edit else "original"}."""',
            f"    return {body}",
            "",
        ]
    return "\n".join(out) + "\n"


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=env, check=True)
    return done.stdout.decode().strip()


def setup_django(tmp: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "ozweb.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "OZWEB_VAR_DIR": str(tmp / "var"),
            "OZWEB_SECRET_KEY": secrets.token_urlsafe(32),
            "OZWEB_SANDBOX": "local",
            "OZWEB_RUN_DISPATCH": "manual",
        }
    )
    for name in ("REDIS_URL", "OZWEB_CACHE_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def build_change(tmp: Path, files: int, lines: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from apps.agents.models import Agent, Harness
    from apps.repos import git as repo_git
    from apps.repos.models import Change, ChangeVersion, Repository
    from apps.teams.services import team_create
    from apps.threads.models import Thread

    user = get_user_model().objects.create_user("bench", password=secrets.token_urlsafe(12))
    team = team_create(name="Bench", owner=user)
    recv = tmp / "recv.txt"
    agent = Agent.objects.create(
        team=team, handle="coder", display_name="Coder", harness=Harness.COMMAND,
        command=f"{sys.executable} -u {tmp / 'agent.py'}", environment={"BENCH_RECV": str(recv)},
    )  # fmt: skip
    (tmp / "agent.py").write_text(AGENT)
    thread = Thread.objects.get(team=team, name="general")
    repo = Repository.objects.create(team=team, name="big")
    bare = repo_git.init_bare(repo)
    work = tmp / "work"
    git("clone", "--quiet", str(bare), str(work))
    git("checkout", "--quiet", "-B", "main", cwd=work)
    for i in range(files):
        path = work / f"pkg{i % 10}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source_file(i, lines, changed=False))
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", "base", cwd=work)
    base = git("rev-parse", "HEAD", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    git("checkout", "--quiet", "-b", "ozweb/coder/1", cwd=work)
    for i in range(files):
        path = work / f"pkg{i % 10}" / f"module_{i}.py"
        path.write_text(source_file(i, lines, changed=True))
    git("commit", "--quiet", "-am", "rewrite half", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/ozweb/coder/1", cwd=work)
    change = Change.objects.create(
        team=team, repo=repo, title="Rewrite half of everything", branch="ozweb/coder/1",
        base="main", agent=agent, thread=thread, head=head,
    )  # fmt: skip
    stats = repo_git.file_stats(repo, base, head)
    ChangeVersion.objects.create(change=change, number=1, head=head, base_sha=base, files=stats)
    changed = sum(f["additions"] + f["deletions"] for f in stats)
    return {
        "user": user, "change": change, "agent": agent, "thread": thread, "bare": bare,
        "base": base, "head": head, "recv": recv, "changed": changed, "files": len(stats),
    }  # fmt: skip


def time_git_diff(bare: Path, base: str, head: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            ["git", "--git-dir", str(bare), "diff", "--no-color", "--no-ext-diff", "-M",
             base, head, "--"],
            capture_output=True, check=True,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
        size = len(done.stdout)
    return statistics.median(times), size


@dataclass
class PageTimes:
    cold: float  # first view, nothing highlighted before (seconds)
    deferred: int  # files that view showed plain, to be coloured as they scroll in
    colours: list[float]  # each deferred file's colours (its highlight call), in ms
    warm: float  # median of the views after every file was coloured (seconds)
    size: int  # bytes of the warm page


def time_page(client: Any, url: str, repeat: int) -> PageTimes:
    from django.core.cache import cache

    from apps.repos import review_page

    cache.clear()
    review_page._rows_cache = review_page._RowsCache()
    started = time.perf_counter()
    response = client.get(url)
    cold = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    deferred = [int(i) for i in re.findall(rb'data-hl="(\d+)"', response.content)]
    # What the page's script does as the reader scrolls: one call per plain file.
    base = re.search(rb'data-highlight-url="([^"]+)"', response.content)
    colours = []
    for index in deferred:
        assert base is not None
        started = time.perf_counter()
        answer = client.get(base.group(1).decode().replace("&amp;", "&") + f"&file={index}")
        colours.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.status_code
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        warm.append(time.perf_counter() - started)
        assert b'data-hl="' not in response.content  # all coloured by now
    return PageTimes(
        cold, len(deferred), sorted(colours), statistics.median(warm), len(response.content)
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting for {what}")


def received(recv: Path) -> dict[str, int]:
    if not recv.exists():
        return {}
    return {
        parts[0]: int(parts[1])
        for line in recv.read_text().splitlines()
        if len(parts := line.split()) == 2
    }


def time_reviews(ctx: dict[str, Any], client: Any, reviews: int) -> tuple[list[float], list[float]]:
    from django.db import close_old_connections

    from apps.runs.creation import NewRun, run_create
    from apps.runs.executor import execute_run
    from apps.runs.models import Run

    change, recv = ctx["change"], ctx["recv"]
    run = run_create(NewRun(agent=ctx["agent"], prompt="start", thread=ctx["thread"]))

    def execute() -> None:
        try:
            execute_run(run.pk)
        finally:
            close_old_connections()

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    wait_for(lambda: "ready" in received(recv), 30, "the agent to start")
    wait_for(lambda: Run.objects.filter(pk=run.pk, status="running").exists(), 30, "running")
    end_to_end, review_hop = [], []
    comments = f"/api/v1/changes/{change.pk}/comments/"
    review_url = f"/api/v1/changes/{change.pk}/reviews/"
    for n in range(reviews):
        started_ns = time.time_ns()
        made = client.post(
            comments,
            {"path": "pkg0/module_0.py", "line": 7 + 8 * (n % 10), "body": f"fix {n}"},
            content_type="application/json",
        )
        assert made.status_code == 201, made.content
        review_ns = time.time_ns()
        sent = client.post(
            review_url,
            {"verdict": "request_changes", "body": f"BENCH-{n} please"},
            content_type="application/json",
        )
        assert sent.status_code == 201, sent.content
        got = wait_for(lambda n=n: received(recv).get(str(n)), 10, f"review {n} at the agent")
        end_to_end.append((got - started_ns) / 1e6)
        review_hop.append((got - review_ns) / 1e6)
    client.post(
        review_url, {"verdict": "request_changes", "body": "BENCH-QUIT"},
        content_type="application/json",
    )  # fmt: skip
    worker.join(30)
    return end_to_end, review_hop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--lines", type=int, default=100, help="changed lines per file")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reviews", type=int, default=60)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ozweb-bench-review-"))
    try:
        setup_django(tmp)
        from django.test import Client

        log(f"building a change of {args.files} files × {args.lines} changed lines")
        ctx = build_change(tmp, args.files, args.lines)
        client = Client(SERVER_NAME="127.0.0.1")  # an allowed host (ALLOWED_HOSTS)
        client.force_login(ctx["user"])
        # A process that has served a page before (URLs, templates, middleware loaded): what
        # is measured is the change's first view, not the process's first request.
        assert client.get("/", follow=True).status_code == 200
        git_s, diff_bytes = time_git_diff(ctx["bare"], ctx["base"], ctx["head"], args.repeat)
        url = f"/changes/{ctx['change'].pk}/"
        unified = time_page(client, url, args.repeat)
        split = time_page(client, url + "?view=split", args.repeat)
        log(f"review → running agent, {args.reviews} times")
        end_to_end, hop = time_reviews(ctx, client, args.reviews)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    end_to_end.sort()
    hop.sort()
    ms = 1000
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmachine: {machine_line()}; load average {load} (others' work included)")
    print(f"change: {ctx['files']} files, {ctx['changed']:,} changed lines "
          f"(git diff output {diff_bytes / 1e6:.1f} MB)")  # fmt: skip
    print(f"git diff (median of {args.repeat}):          {git_s * ms:8.1f} ms")
    for name, page in (("review page", unified), ("side by side", split)):
        print(f"{name}, first view (cold caches): {page.cold * ms:8.1f} ms  "
              f"{page.cold / git_s:5.1f}× git diff  (target < {TARGET_RATIO:g}×); "
              f"{ctx['files'] - page.deferred} files highlighted inline, "
              f"{page.deferred} shown plain until scrolled to")  # fmt: skip
        if page.colours:
            print(f"  a plain file's colours (n={len(page.colours)}): "
                  f"p50 {percentile(page.colours, 50):.1f} ms, "
                  f"p99 {percentile(page.colours, 99):.1f} ms, "
                  f"all {sum(page.colours):,.0f} ms")  # fmt: skip
        print(f"{name}, seen before (median of {args.repeat}): {page.warm * ms:8.1f} ms  "
              f"{page.warm / git_s:5.1f}× git diff  {page.size / 1e6:.1f} MB")  # fmt: skip
    for name, values in (
        ("comment POST → agent stdin", end_to_end),
        ("review POST → agent stdin", hop),
    ):
        print(
            f"{name} (n={len(values)}): p50 {percentile(values, 50):.1f} ms, "
            f"p99 {percentile(values, 99):.1f} ms, max {values[-1]:.1f} ms "
            f"(target p99 < {TARGET_P99_MS:g} ms)"
        )
    verdict = (
        max(unified.cold, unified.warm, split.cold, split.warm) / git_s < TARGET_RATIO
    ) and percentile(end_to_end, 99) < TARGET_P99_MS
    print("targets met" if verdict else "TARGETS MISSED")


if __name__ == "__main__":
    main()
