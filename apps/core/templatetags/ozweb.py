from __future__ import annotations

import hashlib
import json
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.core.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    return mark_safe(render_markdown(text or ""))  # noqa: S308 -- sanitised by nh3


AVATAR_HUES = 36  # .hue-0 … .hue-35 in app.css, 10° apart


@register.filter
def hue(name: str) -> int:
    """A stable avatar colour for a handle or username: the number of its `.hue-N` class (a
    class, not a style attribute, which the Content-Security-Policy does not allow)."""
    degrees = int(hashlib.sha1(str(name).encode()).hexdigest()[:4], 16) % 360  # noqa: S324
    return degrees * AVATAR_HUES // 360


@register.filter
def at_most(value: int, limit: int) -> int:
    """`value`, capped: for classes that exist up to a bound (the run tree's `.depth-N`)."""
    return min(int(value), int(limit))


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
