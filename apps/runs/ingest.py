"""Run output: harness events stored in batches, and the writer that groups those batches.

`run_ingest` stores one batch of one run's normalized events (secrets masked:
apps.runs.masking) in one transaction, with its messages in the feed and one broadcast. The
writer thread below groups batches:

Executors hand their batches (≤50 ms of one run's events) to this process's writer. It takes
everything queued and stores it in one transaction, then takes what arrived meanwhile: when
one run prints now and then, its batch is written at once; when ten stream at the same time,
their batches share transactions instead of queuing for the database's write lock one by one
(bench/runs.py: 10 agents × 100 lines/s went from 200 transactions/s, p99 ~1.3 s, to a few
dozen). One writer also keeps each run's batches in order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from apps.core import sql
from apps.core.db import connections_done
from apps.harnesses.base import EventKind, NormalizedEvent
from apps.runs.masking import SecretMask
from apps.runs.models import Run, RunEvent
from apps.threads.models import MessageKind, Thread
from apps.threads.services import NewMessage, messages_append

logger = logging.getLogger(__name__)

MAX_BATCHES_PER_TRANSACTION = 200
# A transaction starts at most this often: batches that arrive sooner after the last one wait
# for the next, with everything else that came meanwhile. One run printing now and then is
# stored at once; runs streaming together share a transaction per gap instead of taking one
# each (bench/runs.py, 10 agents × 100 lines/s: ~200 transactions, broadcasts and frames to
# every viewer a second, each of a few lines). As long as the executors' FLUSH_SECONDS, so
# that one streaming run's batches never wait here.
TRANSACTION_GAP_SECONDS = 0.05
# While the database is unreachable (a restart, a failover) the writer keeps the batches and
# tries again for this long before it gives them up (tests/faults/test_postgres_restart.py).
STORE_RETRY_SECONDS = 60.0
# What _store changes on a Run in memory; read back after a transaction that failed.
RUN_FIELDS = ("last_event_seq", "stdout_lines", "session_id", "usage", "result_text", "error")


@dataclass
class Batch:
    run: Run
    events: list[NormalizedEvent]
    secrets: SecretMask
    stdout_lines: int
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def wait(self, timeout: float | None = None) -> None:
        """Block until stored; re-raise what storing it raised."""
        if not self.done.wait(timeout):
            raise TimeoutError("run output was not stored in time")
        if self.error is not None:
            raise self.error


class IngestWriter:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, batch: Batch) -> Batch:
        self._ensure_thread()
        self._queue.put(batch)
        return batch

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ozweb-ingest", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        started = -TRANSACTION_GAP_SECONDS
        while True:
            batches = [self._queue.get()]
            wait = started + TRANSACTION_GAP_SECONDS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            started = time.monotonic()
            while len(batches) < MAX_BATCHES_PER_TRANSACTION:
                try:
                    batches.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._store(batches)
            except Exception:
                logger.exception("storing run output failed")
            # Between batches hold no connection (a pool gets it back), but a SQLite one.
            connections_done()

    def _store(self, batches: list[Batch]) -> None:
        runs = list({id(batch.run): batch.run for batch in batches}.values())
        before = {run.pk: run.last_event_seq for run in runs}
        # Masking reads each run's output as a stream: a retry masks the batches again.
        tails = {id(batch.secrets): (batch.secrets, batch.secrets.tail) for batch in batches}
        deadline = time.monotonic() + STORE_RETRY_SECONDS
        while True:
            for mask, tail in tails.values():
                mask.tail = tail
            try:
                with transaction.atomic():
                    _ingest(batches)
                break
            except (OperationalError, InterfaceError) as exc:
                if time.monotonic() >= deadline:
                    self._store_one_by_one(batches, tails)
                    break
                logger.warning("the database is unreachable, run output waits: %s", exc)
                if _stored_after_all(runs, before, deadline):
                    break
            except Exception:
                self._store_one_by_one(batches, tails)
                break
        for batch in batches:
            batch.done.set()

    def _store_one_by_one(
        self, batches: list[Batch], tails: dict[int, tuple[SecretMask, str]]
    ) -> None:
        # One bad batch must not lose the others: store them one by one, each from what is
        # stored (a failed attempt moved its run's seqs on in memory: the next would skip).
        for mask, tail in tails.values():
            mask.tail = tail
        for batch in batches:
            try:
                batch.run.refresh_from_db(fields=list(RUN_FIELDS))
                with transaction.atomic():
                    _ingest([batch])
            except Exception as exc:
                logger.exception("storing a batch of run %s failed", batch.run.pk)
                batch.error = exc


def _stored_after_all(runs: list[Run], before: dict[int, int], deadline: float) -> bool:
    """After a transaction that failed on the connection: wait for the database, read the
    runs' stored state back into them (the failed attempt changed them in memory), and say
    whether that transaction committed after all (its COMMIT went through, its answer was
    lost). One executor holds a run, so its stored last_event_seq moved only if it did."""
    delay = 0.1
    while True:
        connections_done()  # the broken connection goes; the next comes from a fresh connect
        time.sleep(delay)
        try:
            for run in runs:
                run.refresh_from_db(fields=list(RUN_FIELDS))
            return any(run.last_event_seq != before[run.pk] for run in runs)
        except (OperationalError, InterfaceError):
            if time.monotonic() >= deadline:
                return False
            delay = min(delay * 2, 2.0)


def _ingest(batches: list[Batch]) -> None:
    _store_all([(batch.run, batch.events, batch.secrets, batch.stdout_lines) for batch in batches])


_MESSAGE_KINDS = {
    EventKind.ASSISTANT_TEXT: MessageKind.TEXT,
    EventKind.TOOL_CALL: MessageKind.TOOL_CALL,
    EventKind.TOOL_RESULT: MessageKind.TOOL_RESULT,
    EventKind.ERROR: MessageKind.ERROR,
}


def _message_for(event: NormalizedEvent, run: Run) -> NewMessage | None:
    kind = _MESSAGE_KINDS.get(event.kind)
    if kind is None:
        return None
    data = event.data
    if event.kind == EventKind.ASSISTANT_TEXT:
        body, extra = data.get("text", ""), {}
        if not body.strip():
            return None
    elif event.kind == EventKind.TOOL_CALL:
        body = data.get("command") or data.get("name", "tool")
        extra = {k: data.get(k) for k in ("call_id", "name", "kind", "input", "command")}
    elif event.kind == EventKind.TOOL_RESULT:
        body = str(data.get("output", ""))
        extra = {k: data.get(k) for k in ("call_id", "status", "exit_code")}
    else:
        body = data.get("message", "error")
        extra = {k: data.get(k) for k in ("http_status", "fatal")}
    limit = settings.OZWEB_MAX_MESSAGE_BYTES
    if len(body.encode()) > limit:
        body = body.encode()[: limit - 64].decode(errors="ignore") + "\n… [truncated]"
    return NewMessage(body=body, kind=kind, author_agent=run.agent, data=extra, run_id=run.pk)


def _merge_usage(total: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    merged = dict(total)
    cumulative = bool(data.get("cumulative"))
    for key in ("input_tokens", "output_tokens", "cached_input_tokens"):
        value = data.get(key)
        if isinstance(value, int | float):
            merged[key] = int(value) if cumulative else int(merged.get(key, 0)) + int(value)
    cost = data.get("cost_usd")
    if isinstance(cost, int | float):
        merged["cost_usd"] = (
            float(cost) if cumulative else float(merged.get("cost_usd") or 0) + cost
        )
    return merged


def run_ingest(
    *,
    run: Run,
    events_batch: list[NormalizedEvent],
    secrets: SecretMask,
    stdout_lines: int | None = None,
) -> None:
    """Persist a batch of harness events in one transaction; the feed gets one broadcast."""
    if not events_batch:
        return
    with transaction.atomic():
        _store_all([(run, events_batch, secrets, stdout_lines)])


# One run's batch: its run, its events, the run's secret mask, its stdout line count so far.
Part = tuple[Run, list[NormalizedEvent], SecretMask, int | None]


def _store_all(parts: list[Part]) -> None:
    """Store batches, in order, as one set of writes: their events in one INSERT, each run's
    row updated once, each thread's messages appended (and broadcast) once. Ten agents
    streaming into one thread made a message append, a broadcast and a frame to every
    viewer per batch; now per transaction (bench/runs.py)."""
    run_events: list[RunEvent] = []
    updated: dict[int, tuple[Run, dict[str, Any]]] = {}
    appends: dict[int, tuple[Thread, list[NewMessage]]] = {}
    for run, events_batch, secrets, stdout_lines in parts:
        if not events_batch:
            continue
        first_seq = run.last_event_seq + 1
        masked = [
            NormalizedEvent(
                kind=e.kind,
                data=secrets.mask(e.data),
                raw=None,
                session_id=e.session_id,
            )
            for e in events_batch
        ]
        run_events += [
            RunEvent(run=run, seq=first_seq + i, kind=str(e.kind), data=e.data)
            for i, e in enumerate(masked)
        ]
        # One executor holds a run, so it alone appends its events.
        run.last_event_seq = first_seq + len(masked) - 1
        updates = updated.setdefault(run.pk, (run, {}))[1]
        updates["last_event_seq"] = run.last_event_seq
        if stdout_lines is not None:
            run.stdout_lines = updates["stdout_lines"] = stdout_lines
        for event in masked:
            if event.session_id and not run.session_id:
                run.session_id = updates["session_id"] = event.session_id[:200]
            if event.kind == EventKind.USAGE:
                run.usage = updates["usage"] = _merge_usage(run.usage or {}, event.data)
            elif event.kind == EventKind.TURN_FINISHED and event.data.get("result_text"):
                run.result_text = updates["result_text"] = event.data["result_text"]
            elif event.kind == EventKind.ERROR and event.data.get("fatal"):
                run.error = updates["error"] = str(event.data.get("message", ""))[:2000]
        items = [m for m in (_message_for(e, run) for e in masked) if m is not None]
        if items and run.thread_id is not None:
            if run.thread_id not in appends:
                assert run.thread is not None
                appends[run.thread_id] = (run.thread, [])
            appends[run.thread_id][1].extend(items)
    # Plain SQL (apps.core.sql): every line an agent prints comes through here.
    sql.insert(run_events)
    for run, updates in updated.values():
        sql.update(Run, run.pk, updates)
    for thread, items in appends.values():
        messages_append(thread=thread, items=items)


writer = IngestWriter()
