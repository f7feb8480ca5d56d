"""Several writers at once on the real database: seqs stay unique and gap-free."""

import threading

import pytest
from django.db import connection, connections

from apps.threads import services
from apps.threads.models import Message, Thread
from tests.factories import MembershipFactory, ThreadFactory

WRITERS = 6
POSTS_EACH = 8


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency need PostgreSQL (DATABASE_URL)")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_get_unique_gap_free_seqs(postgres_only):
    membership = MembershipFactory()
    threads = [ThreadFactory(team=membership.team) for _ in range(2)]
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        thread = Thread.objects.get(pk=threads[n % 2].pk)
        try:
            start.wait()
            for i in range(POSTS_EACH):
                services.message_post(actor=membership, thread=thread, body=f"w{n} m{i}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    per_thread = WRITERS // 2 * POSTS_EACH
    for thread in threads:
        seqs = list(
            Message.objects.filter(thread=thread).order_by("seq").values_list("seq", flat=True)
        )
        assert seqs == list(range(1, per_thread + 1))
        thread.refresh_from_db()
        assert thread.last_seq == per_thread
