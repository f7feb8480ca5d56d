"""The ASGI application. Importing it starts nothing: see ozweb/runtime.py."""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ozweb.settings")
from apps.core.daphne_requests import without_form_parsing  # noqa: E402
from apps.core.handlers import OneHopASGIHandler, get_asgi_application  # noqa: E402

without_form_parsing()

django_asgi_app: OneHopASGIHandler | ASGIStaticFilesHandler = get_asgi_application()
if settings.OZWEB_SERVE_STATIC:
    # Self-hosted installs need no separate static server; big ones can put one in front.
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.agentapi.mcp import with_mcp  # noqa: E402
from apps.agentapi.rest import with_agent_rest  # noqa: E402
from apps.core.websocket import websocket_stack  # noqa: E402
from apps.gateway.door import with_gateway  # noqa: E402
from ozweb.routing import websocket_urlpatterns  # noqa: E402
from ozweb.runtime import Runtime, ServerApplication  # noqa: E402

router = ProtocolTypeRouter(
    {
        # The agent API (its MCP server at /mcp, its REST verbs) and the model gateway
        # (/gateway/) answer before Django does.
        # (django-stubs types the handler's scope as a dict, starlette's ASGIApp as a mapping.)
        "http": with_gateway(with_agent_rest(with_mcp(django_asgi_app))),  # type: ignore[arg-type]
        # (channels' URLRouter stub wants its own type-only pattern class, not path()'s.)
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),  # type: ignore[arg-type]
    }
)

# A server process starts its runtime with its first event; tests use `router` (or a
# ServerApplication of their own) so that nothing starts behind their back.
application = ServerApplication(router, Runtime())
