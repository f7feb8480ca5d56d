"""How deep JSON nests, measured without recursion: brackets in strings do not count, escapes
are read as a parser reads them, and no text makes the measure slow."""

from __future__ import annotations

import json
import time

import pytest

from apps.core.json_depth import JSONTooDeep, json_check_depth, json_loads, json_nests_deeper


def depth(text: str) -> int:
    """The smallest limit `text` is within."""
    data = text.encode()
    return next(limit for limit in range(10_000) if not json_nests_deeper(data, limit))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ('"[[["', 0),
        ("[]", 1),
        ("[[], {}, [[]]]", 3),
        ('{"a": [1, {"b": "[[[[{{{{"}]}', 3),
        (r'["\"[[[", "\\", ["x"]]', 2),  # an escaped quote, then an escaped backslash
        (r'["\\\"[[", 1]', 1),  # \\ then \" : still inside the string
        ("[1] [2] [[3]]", 2),
        ("[" * 5000 + "]" * 5000, 5000),
    ],
)
def test_depth_is_what_a_parser_descends(text, expected):
    assert depth(text) == expected


def test_the_depth_is_that_of_the_parsed_value():
    value = {"a": [{"b": [[], {"c": "]]]}}}"}]}], "d": "[" * 100}
    text = json.dumps(value)

    def nesting(v) -> int:
        if isinstance(v, dict):
            return 1 + max(map(nesting, v.values()), default=0)
        if isinstance(v, list):
            return 1 + max(map(nesting, v), default=0)
        return 0

    assert depth(text) == nesting(value) == 5


def test_too_deep_is_a_value_error_naming_the_limit(settings):
    settings.OZWEB_JSON_MAX_DEPTH = 64

    assert json_loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(JSONTooDeep, match="64 levels") as raised:
        json_loads("[" * 65 + "]" * 65)
    assert isinstance(raised.value, ValueError)
    with pytest.raises(JSONTooDeep):
        json_check_depth(b"[" * 30_000, limit=64)  # unterminated: still refused, not parsed
    json_check_depth("\u00e9[\ud800]", limit=1)  # any str, lone surrogates too


def test_no_text_makes_it_slow():
    """Each byte is looked at a bounded number of times: no regex backtracking, no quadratic
    rescans of unterminated strings."""
    texts = [
        b"[" * 2_000_000,
        b'x\\"' * 700_000 + b"[" * 100,
        b'"' + b"\\" * 2_000_000 + b'"' + b"[" * 100,
        b'{"content": "' + b'abc\\n\\"def' * 200_000 + b'"' + b"[]" * 100 + b"}",
        b"[1,2]," * 300_000,
    ]
    started = time.perf_counter()
    for text in texts:
        json_nests_deeper(text, 64)
    assert time.perf_counter() - started < 3.0
