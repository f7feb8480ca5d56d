"""The embedded SQLite backend keeps closed connections for the next thread (issue 12)."""

import threading

import pytest
from django.db.utils import ConnectionHandler

from apps.core.backends.sqlite3 import base


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """A file database of its own (whatever the suite's database is), outside pytest-django's
    test database."""
    base.forget_idle_connections()
    handler = ConnectionHandler(
        {"default": {"ENGINE": "apps.core.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}}
    )
    with django_db_blocker.unblock():
        yield handler, tmp_path / "db.sqlite3"
    base.forget_idle_connections()


def in_thread(handler, work):
    """`work(connection)` in a fresh thread (its own Django connection, as an ASGI request
    has), which then closes the connection as a request's end does."""
    out = []

    def run():
        connection = handler["default"]
        try:
            out.append(work(connection))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def raw(connection):
    connection.ensure_connection()
    return connection.connection


def test_the_next_thread_gets_the_closed_connection(database):
    handler, _ = database
    first = in_thread(handler, raw)
    assert in_thread(handler, raw) is first
    with handler["default"].cursor() as cursor:  # this thread's own, while the other is idle
        cursor.execute("SELECT 1")
        assert handler["default"].connection is first
    handler["default"].close()


def test_a_connection_in_a_transaction_is_not_kept(database):
    handler, _ = database

    def open_transaction(connection):
        connection.ensure_connection()
        connection.connection.execute("BEGIN")
        connection.connection.execute("CREATE TABLE t (x INTEGER)")
        return connection.connection

    left_open = in_thread(handler, open_transaction)
    assert in_thread(handler, raw) is not left_open


def test_a_replaced_database_file_is_not_read_through_an_old_connection(database):
    handler, path = database

    def write(connection):
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE t (x INTEGER)")
        return connection.connection

    old = in_thread(handler, write)
    path.unlink()
    path.touch()  # a new, empty file by the same name
    assert in_thread(handler, raw) is not old

    def tables(connection):
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master")
            return cursor.fetchall()

    assert in_thread(handler, tables) == []
