"""SQLite, with this process's writers taking turns in Python before SQLite's write lock.

Embedded ozweb writes from many threads at once (agent API requests, run executors, the
output writer). SQLite lets one write at a time; a writer that finds the lock taken retries
inside SQLite's busy handler, which sleeps 1, 2, 5, 10 ... up to 100 ms between tries, so a
wait of a millisecond could cost tens. At hundreds of agent messages a second those sleeps
were the slowest 1% of deliveries (bench/messaging.py). A lock per database file hands the
turn straight to the next writer of this process; other processes (management commands) still
meet SQLite's own lock and busy timeout.
"""

from __future__ import annotations

import threading

from django.db.backends.sqlite3 import base

# Longer than this and the writer goes on to SQLite's busy handling (which has its own timeout).
TURN_TIMEOUT_SECONDS = 20.0

_turns: dict[str, threading.Lock] = {}
_turns_lock = threading.Lock()


def _turn_for(name: str) -> threading.Lock:
    with _turns_lock:
        return _turns.setdefault(name, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    # The methods below override private hooks of Django's backends, which django-stubs leaves
    # out: hence their `type: ignore`s.
    _turn: threading.Lock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if not self.is_in_memory_db() and self._turn is None:
            turn = _turn_for(str(self.settings_dict["NAME"]))
            if turn.acquire(timeout=TURN_TIMEOUT_SECONDS):
                self._turn = turn
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._end_turn()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._end_turn()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._end_turn()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._end_turn()

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.release()
