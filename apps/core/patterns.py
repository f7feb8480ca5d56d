"""Regexes for what an input may be, as the OpenAPI schema states them (`pattern`) and the
serializers check them: the same text on both sides, so a client that follows the schema is
never refused and one that does not always is."""

from __future__ import annotations

# Not only whitespace.
NOT_BLANK = r"\S"


def anchored_body(pattern: str) -> str:
    """`^...$` without its anchors."""
    return pattern.removeprefix("^").removesuffix("$")


def stripped(pattern: str) -> str:
    """What, once `.strip()`ped, matches the anchored `pattern` (services strip their input)."""
    return rf"^\s*(?:{anchored_body(pattern)})\s*$"


# What shlex.split parses: no unclosed quote, no backslash at the end.
SHELL_WORDS = r"""^(?:[^'"\\]|\\[\s\S]|'[^']*'|"(?:[^"\\]|\\[\s\S])*")*$"""
