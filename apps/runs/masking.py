"""Masking a run's secrets (its agent's secret values and its run token) in what it prints.

A secret is found not only as itself but as a program would print it encoded: hex (lower and
upper case), URL-encoded (`%XX` in either case, `+` for spaces), and base64 in both alphabets
(standard and URL-safe), with or without padding, alone or inside a longer base64 stream at any
of its three byte alignments (the characters that depend only on the secret's own bits). So
`printf %s "$OZWEB_TOKEN" | base64 -w0` shows `••••••`, not a token that works.

Not caught: a secret split across output lines (`base64` wrapping at 76 columns, `xxd -p` at
60) or across events, and encodings other than these.

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
        self._shortest = min(map(len, forms), default=0)

    def text(self, value: str) -> str:
        """`value` with every form of every secret masked, and NUL characters (which PostgreSQL
        text cannot hold) as U+FFFD."""
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        if self._pattern is None or len(value) < self._shortest:
            return value
        if not any(needle in value for needle in self._needles):
            return value
        return self._pattern.sub(MASK, value)

    def mask(self, value: Any) -> Any:
        """`value` made safe to store: every string in it (in dicts and lists, recursively)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value
