"""What an artifact's media type may be: `type/subtype` in RFC 6838's characters, then optional
`; name=value` parameters (RFC 9110 tokens or quoted strings of printable ASCII), at most
MEDIA_TYPE_MAX_LENGTH characters in all. Nothing else is stored, so nothing else can reach a
Content-Type header (no CR/LF, no second header) or overflow the column.
"""

from __future__ import annotations

import re

from apps.core.errors import ServiceError

MEDIA_TYPE_MAX_LENGTH = 120  # ArtifactVersion.media_type's max_length

_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"  # RFC 6838 restricted-name
_WORD = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"  # RFC 9110 token
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'  # RFC 9110 quoted-string, ASCII only
_PARAMETER = rf"[ \t]*;[ \t]*{_WORD}=(?:{_WORD}|{_QUOTED})"
# For the schema (and JSON Schema's reading of it) as much as for Python: nothing in it
# matches a line break, so `$` cannot end a match before a trailing newline in `fullmatch`.
MEDIA_TYPE_PATTERN = rf"^{_NAME}/{_NAME}(?:{_PARAMETER})*$"
MEDIA_TYPE_RE = re.compile(MEDIA_TYPE_PATTERN)

MEDIA_TYPE_HELP = (
    f"type/subtype, e.g. text/markdown or text/plain; charset=utf-8 (at most "
    f"{MEDIA_TYPE_MAX_LENGTH} characters)."
)


def is_media_type(value: str) -> bool:
    return len(value) <= MEDIA_TYPE_MAX_LENGTH and MEDIA_TYPE_RE.fullmatch(value) is not None


def media_type_clean(value: str) -> str:
    """`value` without surrounding spaces, if it is a media type; else a ServiceError (400)."""
    value = value.strip()
    if not is_media_type(value):
        raise ServiceError(
            f"media_type must be a media type: {MEDIA_TYPE_HELP}", field="media_type"
        )
    return value
