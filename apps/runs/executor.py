"""execute_run: hold one run from its container's start to its end.

The same code runs in a Celery worker (scaled) and in the web process's thread pool
(embedded). It starts the harness in a sandbox, turns each stdout line into normalized events
through the harness adapter, persists them in batches (at most every FLUSH_SECONDS, one
transaction and one broadcast per batch), writes steering messages to stdin, and obeys stop
requests and the agent's timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError

from apps.agents.services import agent_secret_values
from apps.core.db import connections_done
from apps.harnesses import get_adapter
from apps.harnesses.base import (
    Adapter,
    EventKind,
    InvocationRequest,
    McpServer,
    NormalizedEvent,
    StdinMode,
)
from apps.providers.sandbox_env import with_model_gateway
from apps.repos.workspaces import run_workspace_finish, run_workspace_prepare
from apps.runs import ingest
from apps.runs.approvals_bridge import RunApprovals
from apps.runs.masking import SecretMask
from apps.runs.models import Run, RunStatus
from apps.runs.preamble import instructions_for
from apps.runs.prompts import prompt_from_deliveries
from apps.runs.sandboxes import get_sandbox, sandbox_network, sandbox_ozweb_url
from apps.runs.sandboxes.base import (
    CONTAINER_HOME,
    LABEL_AGENT,
    LABEL_INSTANCE,
    LABEL_RUN,
    LABEL_TEAM,
    Sandbox,
    SandboxProcess,
    SandboxSpec,
)
from apps.runs.selectors import run_control_look
from apps.runs.tokens import token_issue
from apps.runs.transitions import run_heartbeat, run_transition
from apps.runs.wakeup import Subscription
from apps.threads.deliveries import (
    RunSlot,
    deliveries_claim,
    deliveries_give_back,
    deliveries_release_failed_start,
    deliveries_take,
    deliveries_take_prompt,
)
from apps.threads.models import Delivery

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.05
FLUSH_MAX_EVENTS = 200
POLL_SECONDS = 1.0
KILL_WAIT_SECONDS = 10.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def agent_dirs(run: Run) -> tuple[Path, Path]:
    """The agent's persistent workspace and home (harness sessions live in the home). An
    agent with a repository gets a fresh clone per run instead (apps.repos.workspaces)."""
    base = Path(settings.OZWEB_AGENT_DATA_DIR) / f"team-{run.team_id}" / f"agent-{run.agent_id}"
    if run.agent.repo_id is not None:
        return base / "runs" / str(run.pk) / "workspace", base / "home"
    return base / "workspace", base / "home"


def execute_run(run_id: int, *, sandbox: Sandbox | None = None) -> Run | None:
    """Claim a queued run and hold it to the end. A run someone else claimed is left alone."""
    run = Run.objects.select_related("agent", "thread", "resumes", "team").filter(pk=run_id).first()
    if run is None:
        return None
    claimed = run_transition(
        run=run,
        from_statuses=[RunStatus.QUEUED],
        to=RunStatus.STARTING,
        worker=worker_name(),
        attempts=run.attempts + 1,
    )
    if not claimed:
        return run
    RunExecution(run, sandbox or get_sandbox()).execute()
    return run


class RunExecution:
    def __init__(self, run: Run, sandbox: Sandbox) -> None:
        self.run = run
        self.sandbox = sandbox
        self.agent = run.agent
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.batch: list[NormalizedEvent] = []
        self.secrets = SecretMask()
        self.process: SandboxProcess | None = None
        self.adapter: Adapter | None = None
        self.stdin_open = False
        self.cancelled = False
        self.timed_out = False
        # stdout lines consumed; persisted with each batch so a takeover replays the rest.
        self.lines_read = run.stdout_lines
        self.last_stored: ingest.Batch | None = None
        self.slot = RunSlot.of(run)
        # Tool calls the harness asks permission for (Agent.approval_policy).
        self.approvals = RunApprovals(
            run,
            adapter=lambda: self.live_adapter,
            write=lambda data: self.live_process.write(data),
            wake=lambda: self.inbox.put(("approval", None)),
            mask_text=lambda text: self.secrets.text(text),
        )

    @property
    def live_adapter(self) -> Adapter:
        """The adapter, once the run has started (or been taken over)."""
        if self.adapter is None:
            raise RuntimeError(f"run {self.run.pk} has no adapter yet")
        return self.adapter

    @property
    def live_process(self) -> SandboxProcess:
        """The process, once the run has started (or been taken over)."""
        if self.process is None:
            raise RuntimeError(f"run {self.run.pk} has no process yet")
        return self.process

    # -- start ------------------------------------------------------------------------------

    def execute(self) -> None:
        try:
            self.start()
        except Exception as exc:
            logger.exception("run %s could not start", self.run.pk)
            reason = f"could not start: {exc}"[:1000]
            # First: its messages back off before the run's end dispatches the agent again.
            deliveries_release_failed_start(
                run_id=self.run.pk, handle=self.agent.handle, reason=str(exc)[:200]
            )
            run_transition(
                run=self.run,
                from_statuses=[RunStatus.STARTING],
                to=RunStatus.FAILED,
                error=self.secrets.text(reason),
            )
            return
        with Subscription(self.run.pk, self.wake), self.approvals:
            try:
                self.pump()
            except Exception as exc:
                logger.exception("run %s: executor failed", self.run.pk)
                self.kill()
                self.finish(error=f"ozweb lost the run: {exc}")
            finally:
                if self.process is not None:
                    self.process.cleanup()

    def attach(self, process: SandboxProcess) -> None:
        """Take over a run whose worker died: its process's output after what was stored."""
        run, agent = self.run, self.agent
        # The run token is not known here (only its hash is stored): it is not masked.
        self.secrets = SecretMask(agent_secret_values(agent=agent).values())
        self.adapter = self.make_adapter()
        self.adapter.session_id = run.session_id or None
        self.process = process
        started = run.started_at.timestamp() if run.started_at else time.time()
        self.deadline = time.monotonic() + max(
            0.0, started + agent.run_timeout_seconds - time.time()
        )
        self.stdin_open = False  # a taken-over container's stdin is gone: replies wait
        ingest.run_ingest(
            run=run,
            events_batch=[
                NormalizedEvent(
                    kind=EventKind.WARNING,
                    data={"message": f"re-attached by {worker_name()}; earlier output is above"},
                )
            ],
            secrets=self.secrets,
        )
        with Subscription(run.pk, self.wake), self.approvals:
            try:
                self.pump()
            finally:
                process.cleanup()

    def make_adapter(self) -> Adapter:
        options: dict[str, Any] = {}
        if self.agent.harness == "command":
            # Through a shell, so the command may use variables such as $OZWEB_AGENTS_DIR.
            options["command"] = ["sh", "-c", self.agent.command]
        return get_adapter(self.agent.harness, **options)

    def start(self) -> None:
        run, agent = self.run, self.agent
        secrets = agent_secret_values(agent=agent)
        token = token_issue(run=run)
        self.secrets = SecretMask([*secrets.values(), token])
        self.adapter = self.make_adapter()
        env = {
            **{k: str(v) for k, v in agent.environment.items()},
            **secrets,
            **self.ozweb_env(),
            "OZWEB_TOKEN": token,
        }
        # With a model provider the harness talks to ozweb's gateway with its run token.
        env = with_model_gateway(agent=agent, adapter=self.adapter, env=env, token=token)
        workspace, home = agent_dirs(run)
        run_workspace_prepare(
            run=run,
            workspace=workspace,
            isolated=self.sandbox.isolated,
            ozweb_url=sandbox_ozweb_url(self.sandbox),
        )
        invocation = self.adapter.build_invocation(
            InvocationRequest(
                prompt=run.prompt,
                model=agent.model,
                session_id=(
                    (resumed.session_id or None) if (resumed := run.resumes) is not None else None
                ),
                instructions=instructions_for(run, via_mcp=agent.harness != "command"),
                env=env,
                mcp=McpServer(url=sandbox_ozweb_url(self.sandbox).rstrip("/") + "/mcp/"),
                home=CONTAINER_HOME if self.sandbox.isolated else str(home),
                approval_policy=agent.approval_policy,
            )
        )
        spec = SandboxSpec(
            run_id=run.pk,
            image=agent.image,
            argv=invocation.argv,
            env={**env, **invocation.env},
            workspace=workspace,
            home=home,
            home_files=invocation.home_files,
            setup_commands=list(agent.setup_commands),
            labels={
                LABEL_RUN: str(run.pk),
                LABEL_AGENT: str(agent.pk),
                LABEL_TEAM: str(run.team_id),
                LABEL_INSTANCE: settings.OZWEB_INSTANCE,
            },
            memory_bytes=settings.OZWEB_SANDBOX_MEMORY_BYTES,
            nano_cpus=int(settings.OZWEB_SANDBOX_CPUS * 1e9),
            pids_limit=settings.OZWEB_SANDBOX_PIDS,
            network=sandbox_network(),
            # Agent.network "egress": allowlisted HTTPS through the worker's logging proxy.
            egress_domains=tuple(agent.egress_domains) if agent.network == "egress" else None,
            on_egress=self.egress_logged,
        )
        deliveries_take_prompt(slot=self.slot)
        self.process = self.sandbox.start(spec)
        self.deadline = time.monotonic() + agent.run_timeout_seconds
        run_transition(
            run=run,
            from_statuses=[RunStatus.STARTING],
            to=RunStatus.RUNNING,
            container_id=self.process.container_id[:100],
            sandbox=self.sandbox.kind,
            heartbeat_at=_now(),
        )
        # A process that exits at once breaks these writes; its end is read from stdout.
        with contextlib.suppress(OSError):
            if invocation.stdin_mode == StdinMode.STREAM:
                self.stdin_open = True
                if invocation.stdin:
                    self.process.write(invocation.stdin)
            else:
                self.process.close_stdin()
        # Messages that came after the prompt was written: at once, after it (a harness that
        # takes no input mid-run gets them as its next turn, when this run ends).
        if self.takes_input():
            self.deliver(deliveries_take(slot=self.slot))

    def ozweb_env(self) -> dict[str, str]:
        run = self.run
        env = {
            # Where the container reaches ozweb (its agent API and gateway): through the
            # sandbox's relay, so not always the URL this process uses.
            "OZWEB_URL": sandbox_ozweb_url(self.sandbox),
            "OZWEB_RUN_ID": str(run.pk),
            "OZWEB_AGENT_HANDLE": self.agent.handle,
            "OZWEB_THREAD_ID": str(run.thread_id or ""),
            "OZWEB_WORKSPACE": "/workspace" if self.sandbox.isolated else str(agent_dirs(run)[0]),
            "OZWEB_AGENTS_DIR": settings.OZWEB_CONTAINER_AGENTS_DIR
            if self.sandbox.isolated
            else str(settings.BASE_DIR / "examples" / "agents"),
        }
        if not self.sandbox.isolated:
            # The image puts the `oz` command on PATH; a local process finds it in the repo.
            tools = settings.BASE_DIR / "docker" / "agent-tools"
            env["PATH"] = f"{tools}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        return env

    # -- the loop ---------------------------------------------------------------------------

    def pump(self) -> None:
        assert self.process is not None
        reader = threading.Thread(
            target=self.read_stdout, name=f"run-{self.run.pk}-out", daemon=True
        )
        reader.start()
        next_poll = time.monotonic() + POLL_SECONDS
        # Well inside the reconciler's staleness threshold, so a live run is never taken over.
        heartbeat_every = settings.OZWEB_RUN_STALE_SECONDS / 4
        next_heartbeat = time.monotonic() + heartbeat_every
        last_flush = 0.0
        flush_at: float | None = None
        while True:
            now = time.monotonic()
            wait_until = min(next_poll, next_heartbeat, self.deadline, flush_at or next_poll)
            try:
                kind, payload = self.inbox.get(timeout=max(0.0, wait_until - now))
            except queue.Empty:
                kind, payload = "tick", None
            now = time.monotonic()
            if kind == "line":
                self.lines_read += 1
                events = self.live_adapter.parse_line(payload)
                for data in self.live_adapter.take_outgoing():
                    with contextlib.suppress(OSError):
                        self.process.write(data)
                self.batch.extend(events)
                if events and flush_at is None:
                    # Sparse output goes out at once; a burst is flushed every FLUSH_SECONDS.
                    flush_at = max(now, last_flush + FLUSH_SECONDS)
                if asked := self.live_adapter.take_permission_requests():
                    # Stored first, so the approval card follows its tool call in the feed.
                    self.flush()
                    last_flush, flush_at = now, None
                    self.stored()
                    self.approvals.handle(asked)
                if any(e.kind == EventKind.TURN_FINISHED for e in events):
                    self.flush()
                    last_flush, flush_at = now, None
                    self.turn_finished()
            elif kind == "eof":
                break
            elif kind == "egress":
                self.batch.append(egress_event(payload))
                flush_at = flush_at or now
            elif kind == "approval":
                self.approvals.check()
            elif kind == "wake":
                with self.database_may_be_down():
                    if payload:
                        self.take_handed(payload)
                    else:
                        self.check_control()
            # A due batch first takes the lines already queued: flushing one line at a time
            # once a flush took longer than FLUSH_SECONDS (a busy database) made every later
            # batch a single line, and the run fell further behind (bench/runs.py).
            due = flush_at is not None and now >= flush_at and self.inbox.empty()
            if due or len(self.batch) >= FLUSH_MAX_EVENTS:
                self.flush()
                last_flush, flush_at = now, None
            if now >= next_poll:
                with self.database_may_be_down():
                    self.check_control()
                    self.approvals.check()
                next_poll = now + POLL_SECONDS
            if now >= next_heartbeat:
                with self.database_may_be_down():
                    run_heartbeat(run=self.run)
                next_heartbeat = now + heartbeat_every
            if now >= self.deadline and not self.timed_out:
                self.timed_out = True
                self.kill()
        reader.join(timeout=5)
        self.finish()

    @contextlib.contextmanager
    def database_may_be_down(self) -> Iterator[None]:
        """A look or a heartbeat the next tick repeats: a database that does not answer (a
        restart) skips it instead of failing the run; the output waits in the writer."""
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            logger.warning("run %s: the database is unreachable (%s)", self.run.pk, exc)
            connections_done()

    def read_stdout(self) -> None:
        try:
            for line in self.live_process.stdout_lines():
                self.inbox.put(("line", line))
        except Exception as exc:  # the stream broke: the process is gone or unreachable
            self.inbox.put(("line", f"[ozweb] output stream ended: {exc}"))
        finally:
            self.inbox.put(("eof", None))

    def flush(self) -> None:
        """Hand the batch to this process's writer (group commit); it is stored in order."""
        if self.batch:
            events, self.batch = self.batch, []
            self.last_stored = ingest.writer.submit(
                ingest.Batch(
                    run=self.run, events=events, secrets=self.secrets, stdout_lines=self.lines_read
                )
            )

    def stored(self) -> None:
        """Wait until everything flushed so far is in the database."""
        if self.last_stored is not None:
            self.last_stored.wait(timeout=60)

    # -- control ----------------------------------------------------------------------------

    def egress_logged(self, connection: dict[str, Any]) -> None:
        """From the sandbox relay's thread: an egress connection, shown in the run's events."""
        self.inbox.put(("egress", connection))

    def wake(self, deliveries: Sequence[Delivery]) -> None:
        """From any thread: look now (at the deliveries handed over, if any)."""
        self.inbox.put(("wake", list(deliveries)))

    def takes_input(self) -> bool:
        return self.stdin_open and self.live_adapter.capabilities.mid_run_input

    def check_control(self) -> None:
        """Obey a stop request; hand over messages that arrived for this run."""
        try:
            look = run_control_look(run_id=self.run.pk)
            if look is None:  # the run's row is gone (its agent or team deleted)
                return
            if look.cancel_requested and not self.cancelled:
                self.cancelled = True
                self.kill()
                return
            # Messages waiting here were not handed over in memory (another process took
            # them, or the hand-over lost a race): taken as the sender's would have been.
            if look.messages_waiting and self.takes_input():
                self.deliver(deliveries_take(slot=self.slot, known_waiting=True))
        finally:
            connections_done()

    def take_handed(self, deliveries: list[Delivery]) -> None:
        """Messages their sender handed over: claimed by id, written to stdin. Any not taken
        here stay pending for the next turn, the next look, or the run's end to dispatch."""
        if not self.takes_input():
            return
        try:
            self.deliver(deliveries_claim(slot=self.slot, deliveries=deliveries))
        finally:
            connections_done()

    def deliver(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            payload = self.live_adapter.encode_user_message(prompt_from_deliveries([delivery]))
            try:
                self.live_process.write(payload or b"")
            except OSError as exc:
                deliveries_give_back(
                    deliveries=[delivery], reason=f"the run ended before it could take this ({exc})"
                )

    def turn_finished(self) -> None:
        """A turn ended: continue with messages that arrived meanwhile, or let the run end."""
        if not self.stdin_open:
            return
        pending = (
            deliveries_take(slot=self.slot) if self.live_adapter.capabilities.mid_run_input else []
        )
        if pending:
            self.deliver(pending)
        else:
            self.stdin_open = False
            with contextlib.suppress(OSError):
                self.live_process.close_stdin()

    def kill(self) -> None:
        if self.process is not None:
            try:
                self.process.kill()
            except Exception:
                logger.exception("run %s: kill failed", self.run.pk)

    # -- the end ----------------------------------------------------------------------------

    def finish(self, error: str = "") -> None:
        process = self.process
        try:
            exit_code = process.wait(timeout=KILL_WAIT_SECONDS) if process else None
            if process is not None and exit_code is None:
                self.kill()
                exit_code = process.wait(timeout=KILL_WAIT_SECONDS)
        except Exception as exc:  # the sandbox's engine is gone (a Docker restart): say so
            logger.exception("run %s: waiting for its process failed", self.run.pk)
            exit_code = None
            error = error or f"ozweb lost the run's sandbox: {exc}"
        stderr_tail = self.secrets.text(process.stderr_tail() if process else "")
        if self.adapter is not None:
            self.batch.extend(self.adapter.finish(exit_code, stderr_tail))
        self.flush()
        try:
            self.stored()
        except Exception as exc:  # the output could not be stored: say so on the run
            logger.exception("run %s: storing its last output failed", self.run.pk)
            error = error or f"ozweb could not store the run's last output: {exc}"
        self.run.refresh_from_db(fields=["error", "usage", "session_id", "result_text"])
        # Before the final status, whose dispatch may start the next run on the same branch.
        run_workspace_finish(run=self.run, workspace=agent_dirs(self.run)[0])
        last_turn_ok = self.adapter is not None and self.adapter_succeeded()
        if self.cancelled:
            status, error = RunStatus.CANCELLED, error or "Stopped by a person."
        elif self.timed_out:
            status = RunStatus.TIMED_OUT
            error = error or f"Killed after the {self.agent.run_timeout_seconds} s timeout."
        elif exit_code == 0 and last_turn_ok and not error:
            status = RunStatus.SUCCEEDED
        else:
            status = RunStatus.FAILED
            last_line = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else ""
            error = error or self.run.error or last_line or f"exited with code {exit_code}"
        run_transition(
            run=self.run,
            from_statuses=[RunStatus.STARTING, RunStatus.RUNNING],
            to=status,
            exit_code=exit_code,
            error=self.secrets.text(error)[:2000],
            stderr_tail=stderr_tail[-4000:],
        )

    def adapter_succeeded(self) -> bool:
        events = self.run.events.filter(kind=EventKind.TURN_FINISHED).order_by("-seq")[:1]
        last = events[0] if events else None
        return last is not None and last.data.get("status") == "success"


def egress_event(connection: dict[str, Any]) -> NormalizedEvent:
    """An egress connection as a run event (refused ones are warnings)."""
    target = f"{connection['host']}:{connection['port']}"
    if connection["allowed"]:
        message = f"egress: {target} allowed"
    else:
        message = f"egress: {target} refused ({connection['reason']})"
    return NormalizedEvent(kind=EventKind.WARNING, data={"message": message, "egress": connection})


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()
