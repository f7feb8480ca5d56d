"""Masking a run's secrets (its agent's secret values and its run token) in what it prints.

A secret is found not only as itself but as a program would print it encoded: hex (lower and
upper case), URL-encoded (`%XX` in either case, `+` for spaces), and base64 in both alphabets
(standard and URL-safe), with or without padding, alone or inside a longer base64 stream at any
of its three byte alignments (the characters that depend only on the secret's own bits). So
`printf %s "$OZWEB_TOKEN" | base64 -w0` shows `••••••`, not a token that works.

A run's output is masked as one stream (`mask()`, called in order): a form split across
output lines or events (`base64` wrapping at 76 columns, `xxd -p` at 60, a token streamed in
chunks), or across line breaks inside one string, is found as if it were whole. What a string
adds to a form the stream began before is masked at once; the string's own end, when it is the
start of a form (at least MIN_SPLIT characters of one), is masked too, since the rest may come
next, and so is a string's start that is the end of a form (a stream that began elsewhere, e.g.
before a takeover). So at most MIN_SPLIT - 1 characters of a form are shown at a boundary.

Not caught: encodings other than these.

The forms are computed once per run (`SecretMask`). A string is first looked through for the
forms that contain no other (`in`, a fast C search each: 60 µs for 10 KB and five secrets),
and only one that has some is rewritten, in one pass of one compiled pattern: a trie of all the
forms, where a longer form wins over one it starts with (280 µs for the same 10 KB alone).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "••••••"
# Shorter secret values are not masked (they would mask ordinary words); encoded forms shorter
# than this are not searched for (a 4-byte secret's base64 core is 4 characters of noise).
MIN_SECRET_LENGTH = 4
MIN_FORM_LENGTH = 8
# A form split across strings: a part at least this long at a string's end or start is masked.
MIN_SPLIT = 6
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_URLSAFE = str.maketrans("+/", "-_")


def _base64_forms(raw: bytes) -> set[str]:
    forms: set[str] = set()
    standard = base64.b64encode(raw).decode()
    for text in (standard, standard.translate(_URLSAFE)):
        forms.update((text, text.rstrip("=")))
    for skip in (0, 1, 2):  # the secret starts `skip` bytes into a base64 quantum
        encoded = base64.b64encode(bytes(skip) + raw).decode()
        # Only the characters whose 6 bits all come from the secret.
        core = encoded[(8 * skip + 5) // 6 : 8 * (skip + len(raw)) // 6]
        forms.update((core, core.translate(_URLSAFE)))
    return forms


def secret_forms(secret: str) -> set[str]:
    """The strings that give `secret` away: itself, and its encoded forms."""
    raw = secret.encode()
    forms = {raw.hex(), raw.hex().upper(), *_base64_forms(raw)}
    for quoted in (quote(secret, safe=""), quote_plus(secret, safe="")):
        lower = _PERCENT_ESCAPE.sub(lambda m: m.group().lower(), quoted)
        forms.update((quoted, lower))
    return {secret} | {form for form in forms if len(form) >= MIN_FORM_LENGTH}


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex matching any of `words`, longest first where they share a start."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + pattern(child) for char, child in node.items() if char]
        ends_here = "" in node
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        # Greedy: a longer form wins over one that ends here (the text's longest match).
        if ends_here:
            return f"(?:{body})?"
        return body

    return pattern(trie)


class SecretMask:
    """Masks the given secrets, and their encoded forms, in harness output."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                forms |= secret_forms(secret)
        self.forms = frozenset(forms)
        # Every form contains one of these: a text without them has no secret in it.
        self._needles = sorted(f for f in forms if not any(g != f and g in f for g in forms))
        self._pattern = re.compile(_trie_pattern(forms)) if forms else None
        self._longest = max(map(len, forms), default=0)
        # The starts and ends of forms a split may leave at a string's end or start, and
        # (checked first, with one lookup) their last or first MIN_SPLIT characters.
        self._prefixes = {f[:k] for f in forms for k in range(MIN_SPLIT, len(f))}
        self._suffixes = {f[-k:] for f in forms for k in range(MIN_SPLIT, len(f))}
        self._prefix_ends = {p[-MIN_SPLIT:] for p in self._prefixes}
        self._suffix_starts = {p[:MIN_SPLIT] for p in self._suffixes}
        # The end of the output mask() has seen (line breaks left out): a form that began
        # there and goes on in the next string is found across the boundary.
        self.tail = ""

    def text(self, value: str) -> str:
        """`value` with every form of every secret masked, and NUL characters (which PostgreSQL
        text cannot hold) as U+FFFD. On its own: no stream before or after it."""
        masked, _ = self._masked(_without_nul(value), "")
        return masked

    def mask(self, value: Any) -> Any:
        """`value` made safe to store: every string in it (in dicts and lists, recursively),
        as the continuation of the strings masked before (a run's output, in order)."""
        if isinstance(value, str):
            masked, self.tail = self._masked(_without_nul(value), self.tail)
            return masked
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value

    def _masked(self, value: str, tail: str) -> tuple[str, str]:
        """`value` masked after `tail` (the stream before it), and the stream's new tail."""
        if self._pattern is None:
            return value, ""
        index: list[int] | None = None
        flat = value
        if "\n" in value or "\r" in value:  # a form may be wrapped inside one string too
            index = [i for i, char in enumerate(value) if char not in "\r\n"]
            flat = "".join(value[i] for i in index)
        window = tail + flat
        start = len(tail)
        new_tail = window[max(0, len(window) - self._longest + 1) :]
        spans: list[tuple[int, int]] = []
        if any(needle in window for needle in self._needles):
            spans += [m.span() for m in self._pattern.finditer(window) if m.end() > start]
        if window[-MIN_SPLIT:] in self._prefix_ends:  # ends as a form starts: the rest may follow
            for k in range(min(len(window), self._longest - 1), MIN_SPLIT - 1, -1):
                if window[-k:] in self._prefixes:
                    spans.append((len(window) - k, len(window)))
                    break
        if flat[:MIN_SPLIT] in self._suffix_starts:  # starts as a form ends
            for k in range(min(len(flat), self._longest - 1), MIN_SPLIT - 1, -1):
                if flat[:k] in self._suffixes:
                    spans.append((start, start + k))
                    break
        if not spans:
            return value, new_tail
        # In this string's own characters (a span may begin in the tail), merged.
        merged: list[list[int]] = []
        for begin, end in sorted((max(b, start) - start, e - start) for b, e in spans):
            if begin >= end:
                continue
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([begin, end])
        parts, done = [], 0
        for begin, end in merged:
            if index is not None:  # back to `value`'s positions (line breaks inside go too)
                begin, end = index[begin], index[end - 1] + 1
            parts += [value[done:begin], MASK]
            done = end
        parts.append(value[done:])
        return "".join(parts), new_tail


def _without_nul(value: str) -> str:
    return value.replace("\x00", "\ufffd") if "\x00" in value else value
