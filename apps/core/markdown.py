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


def render_markdown(text: str) -> str:
    html = _md.render(text)
    html = MENTION_RE.sub(r'<span class="mention">@\1</span>', html)
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
