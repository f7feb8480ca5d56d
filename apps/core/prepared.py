"""Querysets compiled once: the ORM's query building without its cost on every call.

Building and compiling a queryset costs Django 0.2–1 ms of Python (access_thread's join of
thread, team, agent and membership: 0.9 ms), while the database runs it in tens of µs; on
the paths every post and page load takes, that was most of the request (py-spy,
bench/writes.py). A `PreparedQuery` builds its queryset once per database with stand-in
values, compiles it, and remembers where each value went in the statement's parameters. A call
binds the real values in their place and runs the same SQL through the queryset's own
iterable, so it returns exactly what the queryset would (model instances with their
select_related rows and annotations, or values_list rows), with no query building.

Only values passed as keyword arguments vary between calls; everything else in the queryset
is fixed when it is first built. The stand-ins must reach the SQL unchanged, so values are
ints (ids; one beyond 64 bits matches nothing) or strings compared for equality; a lookup
that rewrites its value (`contains`, `in` with a varying length) cannot be prepared, and is
refused when the query is compiled.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler

T = TypeVar("T")

# Stand-ins: values no real id or name takes, kept within 32 bits (Django refuses integer
# lookups beyond a column's range before compiling them).
_INT_STAND_IN = 2_013_265_000
_BIGINT = 2**63
_STR_STAND_IN = "\x00ozweb-prepared-{}\x00"


class _Compiled:
    def __init__(self, template: QuerySet[Any, Any], compiler: SQLCompiler, sql: str,
                 params: tuple[Any, ...], slots: list[tuple[int, str]]) -> None:  # fmt: skip
        self.template = template
        self.compiler = compiler
        self.sql = sql
        self.params = params
        self.slots = slots  # (index in params, keyword)
        # How each selected column's value is converted (the same on every call).
        self.converters = compiler.get_converters(
            [column for column, *_ in compiler.select[: compiler.col_count]]
        )


def _shallow(obj: Any) -> Any:
    """A copy sharing obj's attributes (copy.copy would evaluate a QuerySet, which pickles
    itself with its results, and clone a Query in full)."""
    twin = object.__new__(type(obj))
    twin.__dict__.update(obj.__dict__)
    return twin


def _running(template: QuerySet[Any, T], compiler: SQLCompiler) -> QuerySet[Any, T]:
    """The never-evaluated template, as a queryset whose query hands out `compiler`."""
    query = _shallow(template.query)
    query.get_compiler = lambda *args, **kwargs: compiler
    queryset: QuerySet[Any, T] = _shallow(template)
    queryset._query = query  # type: ignore[attr-defined]  # the attribute behind .query
    return queryset


class PreparedQuery(Generic[T]):
    """`build(**values)` returns a SELECT queryset; calling this with the same keywords
    returns `list(build(**values))`, compiled only once per database."""

    def __init__(self, build: Callable[..., QuerySet[Any, T]], **kinds: type) -> None:
        """`kinds` gives each keyword's type: int or str."""
        if not kinds or any(kind not in (int, str) for kind in kinds.values()):
            raise TypeError("a PreparedQuery takes keyword values of type int or str")
        self.build = build
        self.kinds = kinds
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def __call__(self, **values: Any) -> list[T]:
        if values.keys() != self.kinds.keys():
            raise TypeError(f"expected the keywords {sorted(self.kinds)}, got {sorted(values)}")
        for name, kind in self.kinds.items():
            value = values[name] = kind(values[name])  # as the ORM's lookup would take it
            if kind is int and not -_BIGINT <= value < _BIGINT:
                return []  # an id no column holds (the ORM, too, matches nothing)
        alias = DEFAULT_DB_ALIAS
        compiled = self._compiled.get(alias)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(alias) or self._compile(alias)
                self._compiled[alias] = compiled
        bound = list(compiled.params)
        for index, name in compiled.slots:
            bound[index] = values[name]
        params = tuple(bound)
        # A shallow copy: what the first compile set up (the select list, how to build the
        # related objects) is read-only from here on; only the connection is this thread's.
        compiler = copy.copy(compiled.compiler)
        compiler.connection = connections[alias]
        compiler.as_sql = lambda *args, **kwargs: (compiled.sql, params)  # type: ignore[method-assign]
        compiler.get_converters = lambda expressions: compiled.converters  # type: ignore[method-assign]
        return list(_running(compiled.template, compiler))

    def _compile(self, alias: str) -> _Compiled:
        stand_ins = {
            name: (_INT_STAND_IN + i if kind is int else _STR_STAND_IN.format(i))
            for i, (name, kind) in enumerate(self.kinds.items())
        }
        template = self.build(**stand_ins).using(alias)
        compiler = template.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = []
        for name, stand_in in stand_ins.items():
            found = [i for i, p in enumerate(params) if p == stand_in and type(p) is type(stand_in)]
            if len(found) != 1:
                raise ValueError(
                    f"{name!r} reaches the SQL {len(found)} times unchanged; "
                    "it must be used exactly once, in an equality lookup"
                )
            slots.append((found[0], name))
        return _Compiled(template, compiler, sql, tuple(params), slots)
