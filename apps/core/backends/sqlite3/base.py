"""SQLite, with this process's writers taking turns in Python before SQLite's write lock.

Embedded ozweb writes from many threads at once (agent API requests, run executors, the
output writer). SQLite lets one write at a time; a writer that finds the lock taken retries
inside SQLite's busy handler, which sleeps 1, 2, 5, 10 ... up to 100 ms between tries, so a
wait of a millisecond could cost tens. At hundreds of agent messages a second those sleeps
were the slowest 1% of deliveries (bench/messaging.py). A lock per database file hands the
turn straight to the next writer of this process; other processes (management commands) still
meet SQLite's own lock and busy timeout.

Closed connections to a database file are kept (a few per file) and handed to the next
thread that connects. Under ASGI every request runs in a fresh thread, and Django's
connections are per thread, so each request opened SQLite again, with its PRAGMAs: 15% of a
REST post's CPU (py-spy, bench/writes.py). A connection goes back only outside any
transaction, and is dropped if the file it was opened on has been replaced.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from typing import Any

from django.db.backends.sqlite3 import base

# Longer than this and the writer goes on to SQLite's busy handling (which has its own timeout).
TURN_TIMEOUT_SECONDS = 20.0

_turns: dict[str, threading.Lock] = {}
_turns_lock = threading.Lock()


def _turn_for(name: str) -> threading.Lock:
    with _turns_lock:
        return _turns.setdefault(name, threading.Lock())


# Idle connections kept per database file (more threads than this connect at once only
# under a burst; the extra ones are closed as before).
IDLE_PER_FILE = 8

# (process, file) → idle (connection, the file's (device, inode) when it was opened)
_idle: dict[tuple[int, str], list[tuple[sqlite3.Connection, tuple[int, int]]]] = {}
_idle_lock = threading.Lock()


def _file_id(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def forget_idle_connections() -> None:
    """Close every kept connection of this process (tests; after replacing a database)."""
    with _idle_lock:
        kept = [conn for idle in _idle.values() for conn, _ in idle]
        _idle.clear()
    for conn in kept:
        conn.close()


# Statements up to this long have their "?" form kept: the same few hundred recur all day.
QMARK_CACHE_CHARS = 4096


@functools.lru_cache(maxsize=2048)
def _qmark(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class CursorWrapper(base.SQLiteCursorWrapper):
    """Django's, with each statement's %s → ? rewrite (a regex substitution per statement,
    ~8% of an agent message's CPU: bench/writes.py) done once per distinct statement."""

    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None and len(query) <= QMARK_CACHE_CHARS:
            return _qmark(query)
        # (django-stubs leave the backend's private convert_query out.)
        return str(super().convert_query(query, param_names=param_names))  # type: ignore[misc]


class DatabaseWrapper(base.DatabaseWrapper):
    # The methods below override private hooks of Django's backends, which django-stubs leaves
    # out: hence their `type: ignore`s.
    _turn: threading.Lock | None = None
    _opened_on: tuple[int, int] | None = None

    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        return self.connection.cursor(factory=CursorWrapper)

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        if not self.is_in_memory_db():
            name = str(self.settings_dict["NAME"])
            now = _file_id(name)
            with _idle_lock:
                idle = _idle.get((os.getpid(), name), [])
                while idle:
                    conn, opened_on = idle.pop()
                    if opened_on == now:
                        self._opened_on = opened_on
                        return conn
                    conn.close()  # the file was replaced: this one reads the old one
        conn = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            self._opened_on = _file_id(str(self.settings_dict["NAME"]))  # it exists now
        return conn

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
            if not self._keep_idle():
                super()._close()  # type: ignore[misc]
        finally:
            self._end_turn()

    def _keep_idle(self) -> bool:
        """Hand the connection to the next thread instead of closing it, if it is clean."""
        conn, opened_on = self.connection, self._opened_on
        if conn is None or opened_on is None or self.in_atomic_block or self.is_in_memory_db():
            return False
        try:
            if conn.in_transaction:
                return False
        except sqlite3.ProgrammingError:  # closed already
            return False
        key = (os.getpid(), str(self.settings_dict["NAME"]))
        with _idle_lock:
            idle = _idle.setdefault(key, [])
            if len(idle) >= IDLE_PER_FILE:
                return False
            idle.append((conn, opened_on))
        return True

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.release()
