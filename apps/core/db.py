"""Database connections in ozweb's long-lived threads (run executors, the agent API's pool).

Django opens a connection per thread and, with CONN_MAX_AGE = 0, `close_old_connections()`
closes it after every unit of work. That suits request threads, which die anyway; a thread
that lives for hours and does a small unit of work many times a second would pay for a new
connection each time (about a millisecond on SQLite: connect, PRAGMAs, and Django's
function registrations). These helpers keep it where that is safe.
"""

from __future__ import annotations

from django.db import connections


def connections_done() -> None:
    """This thread is done with the database for now.

    A healthy SQLite connection is kept for this thread's next unit of work. Any other is
    closed: a PostgreSQL connection goes back to its pool (or closes, without one) so idle
    threads hold none, and a broken connection is never reused. A connection inside a
    transaction is left to the code that opened it.
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or conn.in_atomic_block:
            continue
        healthy = not conn.errors_occurred or conn.is_usable()
        if conn.vendor == "sqlite" and conn.get_autocommit() and healthy:
            conn.errors_occurred = False
            continue
        conn.close()
