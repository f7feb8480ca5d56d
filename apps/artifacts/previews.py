"""What the artifact page shows of a version. Stored bytes are never served as HTML: Markdown
goes through the sanitising `markdown` filter, everything else is escaped text or not shown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apps.artifacts.models import ArtifactKind, ArtifactVersion
from apps.artifacts.selectors import artifact_version_open

PREVIEW_MAX_BYTES = 256 * 1024
SAFE_URL_RE = re.compile(r"^https?://", re.IGNORECASE)
# Media types outside text/* that are still text worth showing.
TEXT_MEDIA_TYPES = {
    "application/json", "application/xml", "application/yaml", "application/x-yaml",
    "application/toml", "application/javascript", "application/x-sh", "application/sql",
    "application/x-python", "image/svg+xml",
}  # fmt: skip


@dataclass(frozen=True)
class DiffLine:
    kind: str  # meta, hunk, add, del, ctx
    text: str


@dataclass(frozen=True)
class Preview:
    mode: str  # markdown, diff, text, link, binary
    text: str = ""
    truncated: bool = False
    lines: list[DiffLine] = field(default_factory=list)
    url: str = ""


def is_text_media_type(media_type: str) -> bool:
    base = media_type.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in TEXT_MEDIA_TYPES or base.endswith(("+json", "+xml"))


def version_preview(version: ArtifactVersion) -> Preview:
    kind = version.artifact.kind
    if kind == ArtifactKind.LINK:
        url = version.url if SAFE_URL_RE.match(version.url) else ""
        return Preview(mode="link", url=url, text=_read_text(version)[0] or "")
    text, truncated = _read_text(version)
    if text is None:
        return Preview(mode="binary")
    if kind in (ArtifactKind.PLAN, ArtifactKind.REPORT):
        return Preview(mode="markdown", text=text, truncated=truncated)
    if kind == ArtifactKind.PATCH:
        return Preview(mode="diff", lines=diff_lines(text), truncated=truncated)
    return Preview(mode="text", text=text, truncated=truncated)


def _read_text(version: ArtifactVersion) -> tuple[str | None, bool]:
    """The start of the content as text, or None when it is binary."""
    if not is_text_media_type(version.media_type):
        return None, False
    with artifact_version_open(version) as handle:
        data = handle.read(PREVIEW_MAX_BYTES + 1)
    if b"\0" in data:
        return None, False
    truncated = len(data) > PREVIEW_MAX_BYTES
    return data[:PREVIEW_MAX_BYTES].decode("utf-8", errors="replace"), truncated


def diff_lines(text: str) -> list[DiffLine]:
    lines = []
    for line in text.splitlines():
        if line.startswith(("+++", "---", "diff ", "index ")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append(DiffLine(kind=kind, text=line))
    return lines
