"""Plain SQL for the few statements on the agent-message and run-output paths.

Building a query costs the ORM 0.2–1 ms of Python; SQLite runs these statements in about
20 µs. With hundreds of agent messages a second, query building was most of the server's CPU
(bench/messaging.py). The statements here take their table and column names from the
models, so a rename stays in one place, and run on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from django.db import connection, models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import Field, Model
from django.utils import timezone

M = TypeVar("M", bound=Model)

INSERT_CHUNK = 500  # rows per INSERT: well under SQLite's limit on bound parameters


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    """The field `name` of the model's own table (a reverse relation has no column there)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is a reverse relation, not a column")
    return field


def column(model: type[Model], field: str) -> str:
    return quote(_field(model, field).column)


def columns(model: type[Model], fields: Sequence[str]) -> str:
    return _columns(model, tuple(fields), connection.vendor)


@functools.lru_cache(maxsize=256)
def _columns(model: type[Model], fields: tuple[str, ...], vendor: str) -> str:
    # `vendor` is only part of the cache key: quoting differs by backend, and a process may
    # use two (the tests run SQLite and PostgreSQL side by side).
    return ", ".join(column(model, f) for f in fields)


def value(model: type[Model], field: str, python_value: Any) -> Any:
    """`python_value` as the database takes it for that column (datetimes on SQLite, JSON)."""
    return _field(model, field).get_db_prep_save(python_value, connection)


def markers(values: Collection[Any]) -> str:
    """`%s, %s, ...`: one bind marker per value, for an IN list or a row (callers pass at
    least one)."""
    return ", ".join(["%s"] * len(values))


class _Names:
    """In a template, `{Model}` is the model's table and `{Model.field}` a column, quoted."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model

    def __format__(self, spec: str) -> str:
        return table(self.model)

    def __getattr__(self, field: str) -> str:
        return column(self.model, field)


def statement(template: str, **names: type[Model] | str) -> str:
    """The SQL of `template`: `{Model}` and `{Model.field}` become quoted names, other `{key}`s
    the strings given (such as `markers(...)`). Values are never formatted in: they are
    bound as parameters."""
    return _statement(template, tuple(names.items()))


@functools.lru_cache(maxsize=512)
def _statement(template: str, names: tuple[tuple[str, type[Model] | str], ...]) -> str:
    return template.format(**{k: _Names(v) if isinstance(v, type) else v for k, v in names})


def rows(template: str, params: Sequence[Any] = (), **names: type[Model] | str) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(statement(template, **names), params)
        return cursor.fetchall()


def row(template: str, params: Sequence[Any] = (), **names: type[Model] | str) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(statement(template, **names), params)
        return cursor.fetchone()


def execute(template: str, params: Sequence[Any] = (), **names: type[Model] | str) -> int:
    """Run a statement; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(statement(template, **names), params)
        return cursor.rowcount


def instances(model: type[M], fields: Sequence[str], found: list[tuple[Any, ...]]) -> list[M]:
    """Model instances from rows of `fields` (attnames); other fields load on first use."""
    return [model.from_db(connection.alias, list(fields), values) for values in found]


def insert(objs: list[M]) -> list[M]:
    """`bulk_create(objs)` for new rows of one model with an auto primary key, without the
    query compiler: one INSERT ... RETURNING per chunk. Sets each object's pk. Like
    bulk_create, it sends no signals; field defaults and auto_now_add apply."""
    if not objs:
        return objs
    model = type(objs[0])
    pk_column = _insert_parts(model)[3]
    # auto_now(_add) timestamps: one for every row of the call, as a column default in one
    # statement would give, prepared once (per row, ~8 µs each: a run's every line has two).
    now = timezone.now()
    for start in range(0, len(objs), INSERT_CHUNK):
        chunk = objs[start : start + INSERT_CHUNK]
        columns_sql, values_sql, params = insert_values(chunk, now=now)
        found = rows(
            "INSERT INTO {Model} ({columns}) VALUES {values} RETURNING {pk}",
            params,
            Model=model,
            columns=columns_sql,
            values=values_sql,
            pk=pk_column,
        )
        inserted(chunk, [new_pk for (new_pk,) in found])
    return objs


def insert_values(
    objs: Sequence[M],
    *,
    now: Any = None,
    computed: Mapping[str, Callable[[M], tuple[str, list[Any]]]] | None = None,
) -> tuple[str, str, list[Any]]:
    """The columns, the VALUES rows and their parameters of an INSERT of new `objs` (one
    model, auto pk), as `insert` sends them, for a statement of the caller's own. A field
    named in `computed` takes, in each row, the SQL expression and parameters the function
    gives for that object instead of a bind marker for its value. auto_now(_add) fields get
    `now` (default: the time now), set on the objects too."""
    model = type(objs[0])
    fields, columns_sql, one, _pk = _insert_parts(model)
    now = timezone.now() if now is None else now
    stamps = {f: f.get_db_prep_save(now, connection) for f, plain in fields if plain is _Stamp}
    computed = computed or {}
    params: list[Any] = []
    rows_sql: list[str] = []
    for obj in objs:
        markers_sql = []  # only with `computed`: otherwise every row is `one`
        for f, plain in fields:
            if f.name in computed:
                expression, extra = computed[f.name](obj)
                markers_sql.append(expression)
                params.extend(extra)
                continue
            if computed:
                markers_sql.append("%s")
            if plain is _Stamp:
                setattr(obj, f.attname, now)
                params.append(stamps[f])
                continue
            value = f.pre_save(obj, True)
            params.append(value if type(value) is plain else f.get_db_prep_save(value, connection))
        rows_sql.append(f"({', '.join(markers_sql)})" if computed else one)
    return columns_sql, ", ".join(rows_sql), params


def inserted(objs: Sequence[Model], pks: Sequence[Any]) -> None:
    """Marks new objects as saved with the primary keys the INSERT returned (in order)."""
    for obj, new_pk in zip(objs, pks, strict=True):
        obj.pk = new_pk
        obj._state.adding = False
        obj._state.db = connection.alias


def update(model: type[Model], pk: Any, changes: Mapping[str, Any]) -> int:
    """`model.objects.filter(pk=pk).update(**changes)` for plain values of concrete fields
    (no expressions), without the query compiler; the number of rows changed."""
    names = tuple(changes)
    return execute(
        "UPDATE {Model} SET {assignments} WHERE {pk} = %s",
        [value(model, name, v) for name, v in changes.items()] + [pk],
        Model=model,
        assignments=_assignments(model, names, connection.vendor),
        pk=quote(model._meta.pk.column),
    )


def assignments(model: type[Model], fields: Sequence[str]) -> str:
    """`col1 = %s, col2 = %s`: the SET list of an UPDATE of these fields (attnames)."""
    return _assignments(model, tuple(fields), connection.vendor)


@functools.lru_cache(maxsize=256)
def _assignments(model: type[Model], fields: tuple[str, ...], vendor: str) -> str:
    # `vendor` is only part of the cache key, as in _columns.
    return ", ".join(f"{column(model, f)} = %s" for f in fields)


# Fields whose get_db_prep_save hands a value of this exact type to the database unchanged
# (exact field classes: a subclass may prepare its values, e.g. encrypt them). Preparing each
# value costs Django a few µs through several calls; a message row has ten.
_INTEGER_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
)
_PASSED_AS_IS: dict[type[Field[Any, Any]], type] = {
    models.CharField: str,
    models.TextField: str,
    models.BooleanField: bool,
}


class _NoValue:
    """The type of no value: of a field that prepares every value."""


class _Stamp:
    """The mark of an auto_now(_add) timestamp, which insert sets itself."""


def _plain_type(field: Field[Any, Any]) -> type:
    """The type of value `field` passes to the database as it is, on this connection's
    backend: integers only where the backend does not wrap them (psycopg 3's do, as Int4...).
    `_Stamp` for an auto_now(_add) timestamp, which insert sets once per call."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if type(target) in _INTEGER_FIELDS:
        adapt = type(connection.ops).adapt_integerfield_value
        return int if adapt is BaseDatabaseOperations.adapt_integerfield_value else _NoValue
    if type(field) is models.DateTimeField and (field.auto_now or field.auto_now_add):
        return _Stamp
    return _PASSED_AS_IS.get(type(target), _NoValue)


def _insert_parts(model: type[Model]) -> tuple[list[tuple[Any, type]], str, str, str]:
    return _insert_parts_for(model, connection.vendor)


@functools.lru_cache(maxsize=64)
def _insert_parts_for(
    model: type[Model], vendor: str
) -> tuple[list[tuple[Any, type]], str, str, str]:
    """The fields an INSERT sets (each with the type of value it takes as it is), their quoted
    columns, one row's bind markers, the pk. `vendor` is only part of the cache key: what a
    backend takes as it is, and its quoting, differ."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    return (
        [(f, _plain_type(f)) for f in fields],
        columns(model, [f.name for f in fields]),
        f"({markers(fields)})",
        quote(meta.pk.column),
    )
