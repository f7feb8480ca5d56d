"""The websocket origin check: a browser's Origin must be the page's own (scheme, host and
port of the request's Host, one of ALLOWED_HOSTS) or one of CSRF_TRUSTED_ORIGINS. Through the
real stack: tests/core/test_websocket.py."""

import pytest

from apps.core.websocket import origin_allowed


@pytest.mark.parametrize(
    ("origin", "host", "secure", "allowed"),
    [
        (None, "127.0.0.1:8000", False, True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", False, True),
        ("http://localhost", "localhost", False, True),
        ("http://localhost:80", "localhost", False, True),
        ("http://LocalHost", "localhost:80", False, True),
        ("https://localhost:8443", "localhost:8443", True, True),
        ("https://localhost", "localhost", True, True),
        ("http://[::1]:8000", "[::1]:8000", False, True),
        # Another port, scheme or host than the request's own: another site.
        ("http://localhost:9999", "localhost:8000", False, False),
        ("http://localhost:9999", "localhost", False, False),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False, False),
        ("http://localhost:8443", "localhost:8443", True, False),
        ("https://localhost:8000", "localhost:8000", False, False),
        ("http://127.0.0.1:8000", "localhost:8000", False, False),
        ("http://127.0.0.1:8000", None, False, False),
        # The request's own Host is not enough: it must be one of ALLOWED_HOSTS.
        ("http://evil.example", "evil.example", False, False),
        ("http://localhost.evil.example", "localhost.evil.example", False, False),
        ("null", "localhost", False, False),
        ("file://localhost", "localhost", False, False),
        ("http://localhost/path", "localhost", False, False),
        ("http://localhost:notaport", "localhost", False, False),
        ("", "localhost", False, False),
    ],
)
def test_an_origin_must_be_the_requests_own_scheme_host_and_port(origin, host, secure, allowed):
    assert origin_allowed(origin, host=host, secure=secure) is allowed


def test_csrf_trusted_origins_are_allowed_whatever_the_host(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://ozweb.example.org", "https://*.example.net"]

    assert origin_allowed("https://ozweb.example.org", host="10.0.0.5:8000", secure=False)
    assert origin_allowed("https://ozweb.example.org:443", host=None, secure=False)
    assert origin_allowed("https://app.example.net", host=None, secure=False)
    assert not origin_allowed("http://ozweb.example.org", host=None, secure=False)
    assert not origin_allowed("https://ozweb.example.org:8443", host=None, secure=False)
    assert not origin_allowed("https://example.org", host=None, secure=False)
