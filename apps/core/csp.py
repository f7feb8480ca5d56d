"""django-csp's middleware, with the settings' policy built once instead of per response.

django-csp builds the Content-Security-Policy header from settings on every response: a
dataclasses.asdict of the response's policy parts (deep copies, ~60 µs for two of them) and
the policy itself (~30 µs), 3-4% of an agent message's CPU (bench/writes.py, py-spy). When a
response and its request ask for nothing of their own (no `@csp_update`, `@csp_replace`,
`@csp`, nor a nonce), the header is a function of the settings alone: it is built once per
setting value and reused. Every other response goes through django-csp's own
`process_response`, unchanged.
"""

from __future__ import annotations

import functools
import http.client
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, PolicyParts
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponseBase

POLICY_SETTINGS = frozenset({"CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"})

# (report only, header, the response's exemption, the policy's setting)
HEADERS = (
    (False, HEADER, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
    (True, HEADER_REPORT_ONLY, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
)

DEBUG_EXEMPT = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)


@functools.cache
def settings_policy(report_only: bool) -> str:
    return build_policy(report_only=report_only)


def _policy_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in POLICY_SETTINGS:
        settings_policy.cache_clear()


setting_changed.connect(_policy_settings_changed)


class CSPMiddleware(DjangoCSPMiddleware):
    """django-csp's CSPMiddleware (settings.MIDDLEWARE names this one), which sets the
    settings' own policy from a cache; the same headers, under the same conditions."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        # A response's decorators or a request's nonce make the policy its own: django-csp's.
        if any(
            self.get_policy_parts(request=request, response=response, report_only=ro)
            != PolicyParts()
            for ro in (False, True)
        ):
            return super().process_response(request, response)
        if response.status_code in DEBUG_EXEMPT and settings.DEBUG:
            return response
        for report_only, header, exempt, setting in HEADERS:
            value = settings_policy(report_only)
            if not value or header in response or getattr(response, exempt, False) is not False:
                continue
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if not request.path_info.startswith(tuple(prefixes)):
                response[header] = value
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
