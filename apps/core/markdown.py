"""Markdown for the feed: rendered without raw HTML, then sanitised, so no script gets through."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable("table")
_md.enable("strikethrough")

_ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "span",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "span": {"class"}}
MENTION_RE = re.compile(r"(?<![\w@.])@([a-zA-Z0-9][a-zA-Z0-9_.-]{0,39})\b")


_TAG_RE = re.compile(r"(<[^>]*>)")
_TAG_NAME_RE = re.compile(r"<(/?)([a-zA-Z0-9]+)")
_NO_MENTIONS_IN = {"code", "pre", "a"}


def _highlight_mentions(html: str) -> str:
    """Wrap @handles in text only: not in attributes, code or links.

    markdown-it escapes every `<` of the source, so each `<...>` left in its output is a tag.
    """
    parts = _TAG_RE.split(html)
    depth = 0
    for i, part in enumerate(parts):
        if i % 2 == 0:
            if depth == 0:
                parts[i] = MENTION_RE.sub(r'<span class="mention">@\1</span>', part)
            continue
        tag = _TAG_NAME_RE.match(part)
        if tag and tag.group(2).lower() in _NO_MENTIONS_IN:
            depth += -1 if tag.group(1) else 1
    return "".join(parts)


# One line of plain words, which Markdown leaves as it is: no character that can start markup,
# an entity, an escape, a mention or a tag; no leading digit (a list) or space (code). Most
# agent output lines are like this; they skip the parser and the sanitiser, ~35 us each
# (tests/core/test_markdown.py checks the result against the full path).
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9 ,.:;?!'/()+=%-]*")


def render_markdown(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return f"<p>{text.rstrip(' ')}</p>\n"
    html = _highlight_mentions(_md.render(text))
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
