"""The API's documentation pages under the site's Content-Security-Policy.

Swagger UI loads its start-up script from a URL of its own (drf-spectacular's split view) and
its styles from files (templates/api/swagger_ui.html), so the site's policy holds. Redoc styles
itself with `<style>` elements it writes at run time and searches in a worker it builds from a
blob: URL, so its page alone allows inline styles and blob: workers (still no inline script).
"""

from __future__ import annotations

from csp.decorators import csp_update
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

swagger_ui = SpectacularSwaggerSplitView.as_view(
    url_name="api:schema", template_name="api/swagger_ui.html"
)
redoc = csp_update({"style-src": ["'self'", "'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})(
    SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html")
)
