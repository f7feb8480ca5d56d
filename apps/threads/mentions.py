"""Finding @mentions in a message body (outside code, which often holds @decorators)."""

from __future__ import annotations

import re

from apps.core.markdown import MENTION_RE

_FENCED = re.compile(r"(^|\n)(```|~~~).*?(\n\2|$)", re.DOTALL)
_INLINE = re.compile(r"`[^`\n]*`")


def extract_mentions(body: str) -> list[str]:
    """Handles mentioned in `body`, lowercased, in first-seen order."""
    prose = _INLINE.sub(" ", _FENCED.sub("\n", body))
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(prose):
        seen.setdefault(match.group(1).lower().rstrip(".-_"), None)
    return list(seen)
