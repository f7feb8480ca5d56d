"""Daphne's HTTP requests without twisted's form parsing, which daphne never reads.

twisted's `Request.requestReceived` parses every POST body it sees as a form: the
Content-Type header through the `email` package's header registry (~0.3 ms of CPU per
request, 4% of daphne's CPU for agent messages: bench/messaging.py, py-spy), then a
urlencoded body with `parse_qs` or a multipart one with `email.message_from_bytes`, into
`request.args`. Daphne hands the ASGI app the raw body and never reads `args`, so the work is
thrown away; twisted lets its requests be made without it (`parsePOSTFormSubmission`), which
daphne does not ask for. `without_form_parsing()` makes daphne's requests ask for it.
"""

from __future__ import annotations

import functools
from typing import Any

from daphne.http_protocol import WebRequest


def without_form_parsing() -> None:
    """Daphne's WebRequest, made from here on without twisted's form parsing (idempotent)."""
    init = WebRequest.__init__
    if getattr(init, "_ozweb_no_form_parsing", False):
        return

    @functools.wraps(init)
    def __init__(self: WebRequest, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        init(self, *args, **kwargs)

    __init__._ozweb_no_form_parsing = True  # type: ignore[attr-defined]
    WebRequest.__init__ = __init__
