import gc
import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ozweb.settings")
django_asgi_app = get_asgi_application()
if settings.OZWEB_SERVE_STATIC:
    # Self-hosted installs need no separate static server; big ones can put one in front.
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from apps.agentapi.mcp import with_mcp  # noqa: E402
from apps.agentapi.rest import with_agent_rest  # noqa: E402
from apps.core.websocket import websocket_stack  # noqa: E402
from ozweb.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The agent API (its MCP server at /mcp, its REST verbs) answers before Django does.
        "http": with_agent_rest(with_mcp(django_asgi_app)),
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
    }
)

if settings.OZWEB_RUN_DISPATCH == "inprocess":
    # Embedded mode has no Celery beat: the web process reconciles runs itself.
    from apps.runs.reconcile import ReconcilerThread  # noqa: E402

    ReconcilerThread(interval=settings.OZWEB_RECONCILE_SECONDS).start()

# What is loaded by now lives as long as the process: keep it out of the garbage collector's
# full passes, which otherwise stopped every thread for 50-150 ms at a time, several times a
# minute under load (bench/messaging.py).
gc.collect()
gc.freeze()
