"""Daphne's requests skip twisted's form parsing (apps.core.daphne_requests): the body
reaches the app as sent, and twisted no longer parses it into `args` that nothing reads."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from daphne.http_protocol import WebRequest
from twisted.web.test.requesthelper import DummyChannel

from apps.core.daphne_requests import without_form_parsing

MULTIPART = b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xyz--\r\n'


class Probe(WebRequest):
    """Daphne's request up to the point where it hands the request to the application."""

    seen: list[tuple[dict[bytes, list[bytes]], bytes]] = []

    def process(self) -> None:
        self.seen.append((dict(self.args), self.content.read()))


def received(content_type: bytes, body: bytes) -> tuple[dict[bytes, list[bytes]], bytes]:
    channel = DummyChannel()
    channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda r: None))
    request = Probe(channel)
    request.requestHeaders.setRawHeaders(b"content-type", [content_type])
    request.content = io.BytesIO(body)
    request.content.seek(0, io.SEEK_END)  # as twisted leaves it once the body is read
    Probe.seen.clear()
    request.requestReceived(b"POST", b"/login/?next=%2F", b"HTTP/1.1")
    [seen] = Probe.seen
    return seen


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (b"application/x-www-form-urlencoded", b"username=a&password=b%26c"),
        (b"multipart/form-data; boundary=xyz", MULTIPART),
        (b"application/json", b'{"to": "@bot"}'),
    ],
)
def test_a_post_body_reaches_the_app_unparsed_and_whole(content_type, body):
    without_form_parsing()
    without_form_parsing()  # idempotent: one wrapper, not two
    assert getattr(WebRequest.__init__, "__wrapped__", None) is not None
    assert not getattr(WebRequest.__init__.__wrapped__, "_ozweb_no_form_parsing", False)

    args, content = received(content_type, body)

    assert content == body
    assert args == {b"next": [b"/"]}  # the query string, parsed as before; the body not


def test_the_served_application_applies_it():
    import ozweb.asgi  # noqa: F401 -- what daphne imports

    assert getattr(WebRequest.__init__, "_ozweb_no_form_parsing", False)
