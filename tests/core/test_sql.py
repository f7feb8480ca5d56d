"""apps.core.sql: the plain statements of the agent-message path, on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.core import sql
from apps.core.db import connections_done
from apps.threads.models import Message, Thread
from tests.factories import AgentFactory


def test_names_come_from_the_models_and_values_are_never_formatted_in():
    statement = sql.statement(
        "SELECT {Message.body} FROM {Message} WHERE {Message.thread} = %s", Message=Message
    )

    assert statement == (
        f"SELECT {sql.quote('body')} FROM {sql.quote('threads_message')} "
        f"WHERE {sql.quote('thread_id')} = %s"
    )


def test_insert_stores_rows_as_bulk_create_would(thread, monkeypatch):
    monkeypatch.setattr(sql, "INSERT_CHUNK", 2)  # three INSERTs for five rows
    at = timezone.now() - dt.timedelta(days=1)
    messages = [
        Message(thread=thread, seq=k + 1, body=f"m{k}", data={"k": k, "ü": [1, None]}, hop=k)
        for k in range(5)
    ]

    sql.insert(messages)

    assert all(m.pk and not m._state.adding for m in messages)
    stored = {m.pk: m for m in Message.objects.filter(thread=thread)}
    for k, message in enumerate(messages):
        again = stored[message.pk]
        assert (again.seq, again.body, again.data, again.hop) == (k + 1, f"m{k}", message.data, k)
        assert again.created_at > at  # auto_now_add applies
        assert again.created_at == message.created_at == messages[0].created_at  # one per call
        assert again.kind == "text"  # and so do field defaults


def bound_as(value):
    """A bound value's type and content (psycopg's Jsonb wrappers do not compare equal)."""
    return type(value), getattr(value, "obj", value)


def test_insert_binds_what_djangos_own_preparation_gives(thread, monkeypatch):
    """The values passed as they are (ints, strings, booleans of plain fields) and the ones
    Django prepares (datetimes, JSON, None, a value of another type) bind as Django's
    get_db_prep_save gives them, on this database."""
    from django.db import connection

    from apps.threads.models import Delivery

    bound: list[list] = []
    rows = sql.rows

    def capture(template, params=(), **names):
        bound.append(list(params))
        return rows(template, params, **names)

    monkeypatch.setattr(sql, "rows", capture)
    message = Message(thread=thread, seq=7, body="b", data={"to": ["@x"]}, hop=True, kind="text")
    sql.insert([message])
    delivery = Delivery(message=message, agent=AgentFactory(team=thread.team), held=False)
    delivery.attempts = "3"  # a string for an int column: prepared (3), not passed as it is
    sql.insert([delivery])

    for obj, params in zip([message, delivery], bound, strict=True):
        fields = [f for f in type(obj)._meta.concrete_fields if not f.primary_key]
        expected = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
        assert [bound_as(p) for p in params] == [bound_as(e) for e in expected]
    assert Delivery.objects.get(pk=delivery.pk).attempts == 3
    assert Message.objects.get(pk=message.pk).hop == 1


def test_row_rows_and_execute(thread):
    changed = sql.execute(
        "UPDATE {Thread} SET {Thread.topic} = %s WHERE {Thread.id} = %s",
        ["O'Brien; DROP TABLE x", thread.pk],
        Thread=Thread,
    )

    assert changed == 1
    assert sql.row(
        "SELECT {Thread.topic} FROM {Thread} WHERE {Thread.id} = %s", [thread.pk], Thread=Thread
    ) == ("O'Brien; DROP TABLE x",)
    assert sql.rows(
        "SELECT {Thread.id} FROM {Thread} WHERE {Thread.id} IN ({ids})",
        [thread.pk, -1],
        Thread=Thread,
        ids=sql.markers([thread.pk, -1]),
    ) == [(thread.pk,)]


def test_update_changes_one_row_as_querysets_update_does(team, thread):
    from apps.runs.models import Run

    agent = AgentFactory(team=team, handle="updated")
    runs = [
        Run.objects.create(team=team, agent=agent, thread=thread, prompt="go") for _ in range(3)
    ]
    changes = {
        "last_event_seq": 7,
        "session_id": "O'Brien; DROP TABLE x",
        "usage": {"input_tokens": 3, "ü": [1.5, None]},
        "error": "",
    }

    assert sql.update(Run, runs[0].pk, changes) == 1
    Run.objects.filter(pk=runs[1].pk).update(**changes)  # the ORM's own, to compare with
    assert sql.update(Run, -1, changes) == 0

    got, orm, untouched = (
        Run.objects.filter(pk=r.pk).values(*changes, "prompt").get() for r in runs
    )
    assert got == orm == {**changes, "prompt": "go"}
    assert untouched["last_event_seq"] == 0 and untouched["usage"] != changes["usage"]


@pytest.mark.django_db(transaction=True)
def test_connections_done_keeps_only_a_healthy_sqlite_connection():
    from django.db import connection, transaction

    Thread.objects.exists()
    connections_done()
    assert (connection.connection is not None) == (connection.vendor == "sqlite")

    with transaction.atomic():
        Thread.objects.exists()
        connections_done()  # inside a transaction: left alone
        assert connection.connection is not None
