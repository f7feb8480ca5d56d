"""What a row id is: a whole number from 1 to 2^63 − 1 (a PostgreSQL bigint, SQLite's INTEGER).

Anything outside that names no row. It is refused where it comes in (a path that does not
match, a query parameter or body field that does not validate) instead of reaching the
database, which cannot even compare with it (SQLite: OverflowError; a 500).
"""

from __future__ import annotations

from typing import Any, TypeGuard

from rest_framework import serializers

# Also the bound of every other bigint the outside world names (a message's seq, ...).
MAX_ID = 2**63 - 1


# An id in the OpenAPI schema (query parameters; the paths' `<id:...>` are described by
# SPECTACULAR_SETTINGS["PATH_CONVERTER_OVERRIDES"]).
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def bounded_int(text: str | None, *, low: int = 1, high: int = MAX_ID) -> int | None:
    """`text` as a whole number from `low` to `high` (ASCII digits only), or None."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > len(str(high)):
        return None
    value = int(text)
    return value if low <= value <= high else None


def is_id(value: object) -> TypeGuard[int]:
    """Whether `value` is an int that can name a row (bools are not ids)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


class IdConverter:
    """`<id:name>` in urls.py and ozweb/routing.py: an id, else the path does not match (404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError(f"{value} is not an id")  # Django: this route does not match
        return number

    def to_url(self, value: Any) -> str:
        return str(value)


def id_field(**kwargs: Any) -> serializers.IntegerField:
    """A body field that holds an id (validated, and bounded in the OpenAPI schema)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)
