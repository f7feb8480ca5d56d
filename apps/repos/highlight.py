"""Syntax highlighting for the review page: pygments, one lexer per file, HTML per line.

Lexing is the costly part of the page (pygments' regex lexers do some tens of thousands of
lines a second), and a version's lines never change, so each file's highlighted lines are
kept in the cache under a hash of what was lexed: a page seen once renders from the cache.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from html import escape

from django.core.cache import cache
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

CACHE_SECONDS = 7 * 24 * 3600
CACHE_VERSION = "hl1"
# Beyond this a file's side is shown plain: a generated or minified file would cost seconds.
MAX_HIGHLIGHT_CHARS = 400_000


@lru_cache(maxsize=512)
def _lexer_for_name(name: str) -> Lexer:
    """By file name (the lookup walks every lexer's patterns: ~0.5 ms, so it is kept)."""
    try:
        return get_lexer_for_filename(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


# Resolved once as the URLs load (pygments scans the installed packages for plugin lexers on
# a first lookup: tens of ms), so no review page pays a process's first lookup.
_lexer_for_name("x.py")


def lexer_for(path: str) -> Lexer:
    name = path.rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    # By extension, so a thousand "*.py" files share one lookup; names like Makefile as such.
    return _lexer_for_name(f"x.{suffix}" if suffix else name)


def _styled_classes() -> frozenset[str]:
    """The token classes the page's colours (pygments' "default" style, static/ozweb/
    review.css) give a look to: a token of any other class is written without a span, which
    halves the page (names, punctuation and whitespace are most of the tokens)."""
    styled = set()
    for ttype, look in get_style_by_name("default"):
        if look["color"] or look["bgcolor"] or look["bold"] or look["italic"] or look["border"]:
            styled.add(STANDARD_TYPES.get(ttype, ""))
    styled -= {"", "w"}  # a colour on spaces shows nothing
    return frozenset(styled)


STYLED = _styled_classes()


@lru_cache(maxsize=1024)
def _css_class(ttype: _TokenType) -> str:
    known: _TokenType | None = ttype
    while known is not None and known not in STANDARD_TYPES:
        known = known.parent
    css = STANDARD_TYPES.get(known, "") if known is not None else ""
    return css if css in STYLED else ""


def _highlight(lexer: Lexer, lines: list[str]) -> list[str]:
    if not lines:
        return []
    text = "\n".join(lines) + "\n"
    if len(text) > MAX_HIGHLIGHT_CHARS or isinstance(lexer, TextLexer):
        return [escape(line, quote=False) for line in lines]
    out: list[str] = []
    parts: list[str] = []  # the current line's finished pieces
    run: list[str] = []  # text of the current class, not yet closed (tokens of one class merge)
    run_css = ""

    def close_run() -> None:
        if run:
            text = escape("".join(run), quote=False)
            parts.append(f'<span class="{run_css}">{text}</span>' if run_css else text)
            run.clear()

    # Unprocessed: the text is already one string with \n line ends (a third faster).
    for _, ttype, value in lexer.get_tokens_unprocessed(text):
        css = _css_class(ttype)
        if css != run_css:
            close_run()
            run_css = css
        for index, piece in enumerate(value.split("\n")):
            if index:
                close_run()
                out.append("".join(parts))
                parts = []
            if piece:
                run.append(piece)
    close_run()
    if parts:
        out.append("".join(parts))
    # The lexer may drop or add a trailing line; the page needs exactly one per input line.
    if len(out) < len(lines):
        out.extend([""] * (len(lines) - len(out)))
    return out[: len(lines)]


def _key(path: str, new_lines: list[str], old_lines: list[str]) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(type(lexer_for(path)).__name__.encode())
    for side in (new_lines, old_lines):
        digest.update(b"\0")
        digest.update("\n".join(side).encode("utf-8", errors="replace"))
    return f"{CACHE_VERSION}:{digest.hexdigest()}"


def plain(lines: list[str]) -> list[str]:
    """Lines escaped but not highlighted: what a deferred file shows until its colours come."""
    # One escape of the joined text: a third of the time of one per line.
    return escape("\n".join(lines), quote=False).split("\n") if lines else []


def highlight_many(
    files: list[tuple[str, list[str], list[str]]], *, deadline: float | None = None
) -> list[tuple[list, list] | None]:
    """highlight_sides for many files with one cache round trip for those already done.

    With a `deadline` (time.monotonic()), files not in the cache are lexed only until then:
    the rest come back as None (the caller shows them plain and fetches their colours
    later), so a never-seen 20,000-line change does not hold its page for seconds."""
    keys = [_key(path, new, old) for path, new, old in files]
    found = cache.get_many(keys)
    results: list[tuple[list, list] | None] = []
    fresh: dict[str, tuple[list, list]] = {}
    for key, (path, new, old) in zip(keys, files, strict=True):
        if key in found:
            results.append(found[key])
            continue
        if deadline is not None and time.monotonic() >= deadline:
            results.append(None)
            continue
        lexer = lexer_for(path)
        result = (_highlight(lexer, new), _highlight(lexer, old))
        fresh[key] = result
        results.append(result)
    if fresh:
        cache.set_many(fresh, CACHE_SECONDS)
    return results
