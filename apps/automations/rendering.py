"""Trigger templates: Django templates rendered in a sandbox.

The template is written by a team admin; the data comes from anyone who has the trigger's
URL. So the engine has no loaders (no `{% include %}` or `{% extends %}` of files), no
`{% load %}`, and none of the tags that reach beyond the context (`debug` prints
`sys.modules`, `url` and `csrf_token` speak of the site); the JSON body is `payload`, whose
values are only dicts, lists, strings, numbers, booleans and null. No autoescaping: the result
is the body of a chat message, which the feed renders as Markdown and sanitizes like any other
(apps.core.markdown), and agents read it as plain text (HTML entities would garble it).
"""

from __future__ import annotations

import functools
from typing import Any

from django.template import (
    Context,
    Engine,
    Library,
    Template,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)

from apps.core.errors import ServiceError

_REFUSED_TAGS = {"csrf_token", "debug", "load", "lorem", "url", "querystring"}
MAX_TEMPLATE_BYTES = 16 * 1024


@functools.cache
def _engine() -> Engine:
    library = Library()
    library.tags.update(
        (name, tag) for name, tag in defaulttags.register.tags.items() if name not in _REFUSED_TAGS
    )
    library.filters.update(defaultfilters.register.filters)
    engine = Engine(loaders=[], libraries={}, autoescape=False, debug=False)
    # Engine() always adds Django's default builtins (loader tags among them): replace them.
    engine.template_builtins = [library]
    return engine


def template_compile(source: str) -> Template:
    """The compiled template, or ServiceError on the `template` field."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        raise ServiceError("The template is over 16 KiB.", field="template", code="too_large")
    try:
        return Template(source, engine=_engine())
    except TemplateSyntaxError as exc:
        raise ServiceError(f"The template does not parse: {exc}", field="template") from None


def template_render(template: Template, context: dict[str, Any]) -> str:
    """The rendered text; ServiceError when the template fails on this data."""
    try:
        return template.render(Context(context, autoescape=False))
    except Exception as exc:
        # A filter can raise on data it did not expect (the template is fine, the payload is
        # not what it was written for): the caller answers it, it is no server error.
        raise ServiceError(
            f"The template could not render this payload: {type(exc).__name__}: {exc}"[:400],
            code="render_failed",
        ) from None
