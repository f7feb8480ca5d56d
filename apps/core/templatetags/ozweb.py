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


@register.filter
def colour(name: str) -> str:
    hue = int(hashlib.sha1(str(name).encode()).hexdigest()[:4], 16) % 360  # noqa: S324
    return f"hsl({hue} 55% 45%)"


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
