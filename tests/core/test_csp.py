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
