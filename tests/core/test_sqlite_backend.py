"""The embedded SQLite backend: this process's writers take turns before SQLite's write lock,
instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import DatabaseError
from django.db.utils import ConnectionHandler


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker):
    """These tests open database files of their own, not the test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path):
    """A file database on the backend, with a busy timeout far shorter than any wait below:
    a writer that met SQLite's lock instead of its turn would fail."""
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "apps.core.backends.sqlite3",
                "NAME": str(tmp_path / "db.sqlite3"),
                "OPTIONS": {"timeout": 0.05, "transaction_mode": "IMMEDIATE"},
            }
        }
    )
    conn = handler["default"]
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE item (name TEXT)")
    yield handler
    handler.close_all()


def write(handler, name: str, hold: float = 0.0, fail: bool = False) -> None:
    """What transaction.atomic does on SQLite, with a pause while the write lock is held."""
    conn = handler["default"]
    conn.ensure_connection()
    conn._start_transaction_under_autocommit()
    try:
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO item VALUES (%s)", [name])
        time.sleep(hold)
        if fail:
            raise RuntimeError("changed my mind")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        handler.close_all()


def names(handler) -> list[str]:
    with handler["default"].cursor() as cursor:
        cursor.execute("SELECT name FROM item ORDER BY name")
        return [r[0] for r in cursor.fetchall()]


def second_writer_errors(handler) -> list[BaseException]:
    """A writer holds the write lock for 0.4 s; what a second one, starting meanwhile, raised."""
    errors: list[BaseException] = []

    def second() -> None:
        try:
            write(handler, "second")
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=write, args=(handler, "first", 0.4))
    first.start()
    time.sleep(0.1)  # the first holds the write lock
    other = threading.Thread(target=second)
    other.start()
    first.join(5)
    other.join(5)
    return errors


def test_a_second_writer_waits_its_turn_instead_of_failing(database):
    assert second_writer_errors(database) == []
    assert names(database) == ["first", "second"]


def test_a_rolled_back_writer_gives_up_its_turn(database):
    with pytest.raises(RuntimeError):
        write(database, "undone", fail=True)

    done = threading.Thread(target=write, args=(database, "next"))
    done.start()
    done.join(2)

    assert not done.is_alive() and names(database) == ["next"]


def test_without_turns_the_same_wait_fails(tmp_path):
    """The check above is meaningful: Django's own backend, same timeout, fails."""
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(tmp_path / "plain.sqlite3"),
                "OPTIONS": {"timeout": 0.05, "transaction_mode": "IMMEDIATE"},
            }
        }
    )
    with handler["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE item (name TEXT)")

    errors = second_writer_errors(handler)

    assert len(errors) == 1 and isinstance(errors[0], DatabaseError)
    assert "locked" in str(errors[0])


def test_statements_are_rewritten_for_sqlite_as_django_does_and_each_once(database):
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    from apps.core.backends.sqlite3 import base

    conn = database["default"]
    conn.ensure_connection()
    cursor = conn.connection.cursor(factory=SQLiteCursorWrapper)
    statements = [
        "SELECT name FROM item WHERE name = %s AND name LIKE '%%x%%'",
        "INSERT INTO item VALUES (%s), (%s)",
        "SELECT '100%%' || %s",
        "SELECT " + ", ".join(["%s"] * 2000),  # long: rewritten, not kept
    ]
    base._qmark.cache_clear()
    with conn.cursor() as ours:
        assert isinstance(ours.cursor, base.CursorWrapper)
        for _ in range(2):
            for sql in statements:
                assert ours.cursor.convert_query(sql) == cursor.convert_query(sql)
        named = "SELECT %(a)s, %(b)s"
        assert ours.cursor.convert_query(named, param_names=["a", "b"]) == "SELECT :a, :b"
        ours.execute("INSERT INTO item VALUES (%s), (%s)", ["a%", "b"])
    assert base._qmark.cache_info().misses == 3  # the three short ones, once each
    assert names(database) == ["a%", "b"]
