"""JSON from outside is refused past a nesting depth (settings.OZWEB_JSON_MAX_DEPTH), before
Python's parser recurses into it: a 10 KB body of 5,000 nested arrays is a RecursionError
(a 500) in `json.loads`, and deep data makes every later walk over it recurse too.

The depth is measured without recursion and without a Python loop over the text, in a few
passes of C: escaped backslashes and quotes are dropped, the text between quotes (strings,
whose brackets do not count) is cut out, the brackets left become +1/−1, and the running sum
is scanned for the first point past the limit. A text with no more brackets than the limit
(nearly every body) is let through by counting them.
"""

from __future__ import annotations

import json
from array import array
from itertools import accumulate
from typing import Any

from django.conf import settings

_OPEN, _CLOSE = 1, 255  # +1 and -1 as signed bytes
_BRACKETS = bytes.maketrans(b"[{]}", bytes([_OPEN, _OPEN, _CLOSE, _CLOSE]))
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JSONTooDeep(ValueError):
    """Nested deeper than the limit (a ValueError, as any JSON that cannot be parsed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels is not accepted.")
        self.limit = limit


def json_max_depth() -> int:
    return int(settings.OZWEB_JSON_MAX_DEPTH)


def json_nests_deeper(data: bytes, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` in the JSON text `data` (UTF-8,
    where no byte of a multi-byte character is a bracket, quote or backslash). For malformed
    text the answer errs towards deeper, which refuses it a little earlier than a parser would.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # cannot nest deeper than it has brackets
    # Escapes first, left to right as a parser reads them: `\\` pairs, then `\"`.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Between the quotes are strings: every other piece of the text, from the second one.
    structure = b"".join(unescaped.split(b'"')[::2])
    brackets = array("b", structure.translate(_BRACKETS, _NOT_BRACKETS))
    return next(filter(limit.__lt__, accumulate(brackets)), None) is not None


def json_check_depth(data: bytes | str, limit: int | None = None) -> None:
    """Raise JSONTooDeep when `data` nests deeper than `limit` (default: the setting)."""
    limit = json_max_depth() if limit is None else limit
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if json_nests_deeper(raw, limit):
        raise JSONTooDeep(limit)


def json_loads(data: bytes | str, limit: int | None = None) -> Any:
    """`json.loads`, refusing (JSONTooDeep, a ValueError) what nests deeper than `limit`."""
    json_check_depth(data, limit)
    return json.loads(data)
