"""Run output stored in groups: the batches one transaction takes from several runs of one
thread keep each run's order, and reach the feed as one append and one broadcast."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.utils import timezone

from apps.harnesses.base import EventKind, NormalizedEvent
from apps.runs.ingest import Batch, IngestWriter
from apps.runs.masking import SecretMask
from apps.runs.models import Run, RunEvent
from apps.threads.models import Message
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def text(line: str) -> NormalizedEvent:
    return NormalizedEvent(kind=EventKind.ASSISTANT_TEXT, data={"text": line})


def test_batches_of_several_runs_share_one_append_and_keep_each_runs_order(team, thread):
    runs = []
    for i in range(3):
        agent = AgentFactory(team=team, handle=f"streamer{i}")
        runs.append(
            Run.objects.create(
                team=team, agent=agent, thread=thread, prompt="go", status="running",
                started_at=timezone.now(),
            )
        )  # fmt: skip
    secret = "s3cr3t-value-123"
    masks = {run.pk: SecretMask([secret]) for run in runs}
    batches = [
        Batch(
            run=run,
            events=[text(f"{run.agent.handle} line {n}"), text(f"{run.agent.handle} line {n + 1}")],
            secrets=masks[run.pk],
            stdout_lines=n + 2,
        )
        for n in (0, 2)
        for run in runs
    ]
    batches.append(
        Batch(
            run=runs[0], events=[text(f"key {secret}")], secrets=masks[runs[0].pk], stdout_lines=5
        )
    )

    with mock.patch("apps.threads.services.broadcast_on_commit") as broadcast:
        IngestWriter()._store(batches)

    for batch in batches:
        assert batch.done.is_set() and batch.error is None
    # One append for the thread: one feed broadcast per group it goes to, not one per batch.
    groups = [c.args[0] for c in broadcast.call_args_list]
    assert len(groups) == len(set(groups))
    bodies = list(
        Message.objects.filter(thread=thread).order_by("seq").values_list("body", flat=True)
    )
    expected = [e.data["text"] for b in batches for e in b.events]
    assert bodies[-len(expected) : -1] == expected[:-1]
    assert bodies[-1].startswith("key ") and secret not in bodies[-1]  # masked
    for run in runs:
        run.refresh_from_db()
        seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))
        assert run.last_event_seq == len(seqs)
    assert runs[0].stdout_lines == 5 and runs[1].stdout_lines == 4
    assert secret not in str(list(RunEvent.objects.values_list("data", flat=True)))


def test_a_lone_batch_is_stored_at_once_and_a_burst_waits_for_one_transaction(monkeypatch):
    """The writer starts a transaction at most every TRANSACTION_GAP_SECONDS: what comes
    within the gap after one waits and shares the next."""
    from apps.runs import ingest

    gap = 0.5  # long enough that the burst below is all queued before the gap ends
    monkeypatch.setattr(ingest, "TRANSACTION_GAP_SECONDS", gap)
    stored: list[tuple[float, list[Batch]]] = []

    def store(batches: list[Batch]) -> None:
        stored.append((time.monotonic(), batches))
        for batch in batches:
            batch.done.set()

    writer = IngestWriter()
    monkeypatch.setattr(writer, "_store", store)
    run = Run(pk=1)

    def batch() -> Batch:
        return Batch(run=run, events=[text("x")], secrets=SecretMask([]), stdout_lines=1)

    submitted = time.monotonic()
    lone = writer.submit(batch())
    lone.wait(timeout=10)
    assert stored[0][0] - submitted < gap  # no wait after an idle writer
    burst = [writer.submit(batch()) for _ in range(5)]
    for b in burst:
        b.wait(timeout=10)

    assert [batches for _, batches in stored] == [[lone], burst]  # one transaction for five
    assert stored[1][0] - stored[0][0] >= gap
