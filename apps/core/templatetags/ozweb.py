from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from apps.core.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    return mark_safe(render_markdown(text or ""))  # noqa: S308 -- sanitised by nh3


@register.filter(expects_localtime=True)
def clock(value: datetime) -> str:
    """`value|time:"H:i"`, without Django's general date formatter (~40 us a call, twice for
    every message rendered: bench/runs.py)."""
    return value.strftime("%H:%M")  # expects_localtime: the engine converted it already


@register.filter(expects_localtime=True)
def stamp(value: datetime) -> str:
    """`value|date:"Y-m-d H:i:s e"`, the same way as `clock`."""
    return value.strftime("%Y-%m-%d %H:%M:%S ") + (value.tzname() or "")


@register.simple_tag
def avatar(agent: Any = None, human: Any = None) -> str:
    """components/avatar.html for an agent, else a human, else ozweb itself; rendered once
    per instance (a run's messages share their agent's) while its name stays the same."""
    owner = agent if agent is not None else human
    if owner is None:
        return render_to_string("components/avatar.html", {})
    key = (agent.handle, agent.initials) if agent is not None else (human.username,)
    memo = owner.__dict__.get("_avatar_html")
    if memo is None or memo[0] != key:
        html = render_to_string("components/avatar.html", {"agent": agent, "human": human})
        memo = owner.__dict__["_avatar_html"] = (key, html)
    return memo[1]


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
