"""The settings' Content-Security-Policy built once (apps.core.csp): the header is django-csp's
own, follows setting changes, and a view's own policy is still built for it."""

from __future__ import annotations

import pytest
from csp.utils import build_policy
from django.urls import reverse

from apps.core.csp import settings_policy

pytestmark = pytest.mark.django_db


def test_a_page_has_the_policy_django_csp_builds_and_it_is_built_once(client):
    settings_policy.cache_clear()
    first = client.get(reverse("login"))
    second = client.get(reverse("login"))
    assert first["Content-Security-Policy"] == build_policy()
    assert second["Content-Security-Policy"] == first["Content-Security-Policy"]
    assert "default-src 'self'" in first["Content-Security-Policy"]
    assert settings_policy.cache_info().misses == 2  # the policy and its report-only one
    assert settings_policy.cache_info().hits >= 1


def test_a_changed_setting_changes_the_header(client, settings):
    client.get(reverse("login"))
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert client.get(reverse("login"))["Content-Security-Policy"] == "default-src 'none'"
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}
    response = client.get(reverse("login"))
    report_only = response["Content-Security-Policy-Report-Only"]
    assert report_only == build_policy(report_only=True) and "img-src 'self'" in report_only


def test_a_view_with_its_own_update_still_gets_it(client, owner):
    client.force_login(owner.user)
    response = client.get(reverse("api:redoc"))
    assert response.status_code == 200
    header = response["Content-Security-Policy"]
    assert "'unsafe-inline'" in header and header != build_policy()


CASES = {
    "plain": {},
    "its own update": {"_csp_update": {"img-src": ["https://example.com"]}},
    "its own report-only replace": {"_csp_replace_ro": {"img-src": ["'none'"]}},
    "exempt": {"_csp_exempt": True},
    "exempt from report-only": {"_csp_exempt_ro": True},
    "a header of its own": {"header": "default-src 'none'"},
    "a 404 under DEBUG": {"status": 404, "debug": True},
    "a 404": {"status": 404},
    "an excluded prefix": {"path": "/excluded/page"},
    "a nonce": {"nonce": "bm9uY2U="},
}


@pytest.mark.parametrize("case", CASES)
def test_the_headers_are_django_csps_own(case, rf, settings):
    """The same response through this middleware and through django-csp's sets the same
    headers, whether or not it takes the cached path."""
    from csp.exceptions import CSPNonceError
    from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
    from django.http import HttpResponse

    from apps.core.csp import CSPMiddleware

    spec = CASES[case]
    settings.DEBUG = spec.get("debug", False)
    settings.CONTENT_SECURITY_POLICY = {
        "EXCLUDE_URL_PREFIXES": ["/excluded"],
        "DIRECTIVES": {"default-src": ["'self'"], "script-src": ["'self'"]},
    }
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report/"}
    }

    def view(request):
        response = HttpResponse("ok", status=spec.get("status", 200))
        for name, value in spec.items():
            if name.startswith("_csp"):
                setattr(response, name, value)
        if "header" in spec:
            response["Content-Security-Policy"] = spec["header"]
        return response

    got = []
    for middleware in (CSPMiddleware(view), DjangoCSPMiddleware(view)):
        request = rf.get(spec.get("path", "/page"))
        if "nonce" in spec:
            request._csp_nonce = spec["nonce"]
        response = middleware(request)
        try:  # a nonce asked for once the header is written is an error (if it was written)
            str(request.csp_nonce)
            nonce_after = "given"
        except CSPNonceError:
            nonce_after = "refused"
        got.append(
            (
                response.get("Content-Security-Policy"),
                response.get("Content-Security-Policy-Report-Only"),
                nonce_after,
            )
        )
    assert got[0] == got[1]
    if case == "plain":
        assert got[0][0] and got[0][1] and got[0][2] == "refused"
