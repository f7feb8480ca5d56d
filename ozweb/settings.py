"""Settings, read from the environment (see .env.example).

With nothing set, ozweb runs embedded: SQLite, the in-process channel layer and worker.
DATABASE_URL (PostgreSQL) and REDIS_URL switch the same code to the scaled-out setup.
"""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ

from harness_image import constants as harness_image

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Local state of an embedded install: SQLite file, generated key, media, demo login.
VAR_DIR = Path(env.str("OZWEB_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("OZWEB_DEBUG", default=False)
# The embedded default generates a key once and keeps it under var/; production sets its own.
SECRET_KEY = env.str("OZWEB_SECRET_KEY", default="")
if not SECRET_KEY:
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env.list("OZWEB_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("OZWEB_CSRF_TRUSTED_ORIGINS", default=[])

# -- transport (production: see "Serving over HTTPS" in the README) --------------------------
# OZWEB_HTTPS says the site is served over HTTPS: cookies are then sent over HTTPS only and
# plain HTTP is redirected, unless one of these says otherwise.
OZWEB_HTTPS = env.bool("OZWEB_HTTPS", default=False)
SESSION_COOKIE_SECURE = env.bool("OZWEB_SESSION_COOKIE_SECURE", default=OZWEB_HTTPS)
# Sessions read from the cache (Redis when scaled, this process's memory when embedded) and
# written through to the database: every page and htmx post loads one, and the database
# read was a tenth of a post's CPU (bench/writes.py).
SESSION_ENGINE = "apps.core.sessions"
# Django's cookie-then-session message storage, made on first use (apps.core.messages).
MESSAGE_STORAGE = "apps.core.messages.LazyFallbackStorage"
CSRF_COOKIE_SECURE = env.bool("OZWEB_CSRF_COOKIE_SECURE", default=OZWEB_HTTPS)
SECURE_SSL_REDIRECT = env.bool("OZWEB_SECURE_SSL_REDIRECT", default=OZWEB_HTTPS)
# Paths never redirected (regexes without the leading slash): the agent doors, which sandboxes
# call at OZWEB_AGENT_API_URL, often plain HTTP on the host (git over HTTP too: a run's clone
# fetches and pushes there), and /healthz for load balancers.
SECURE_REDIRECT_EXEMPT = env.list(
    "OZWEB_SECURE_REDIRECT_EXEMPT",
    default=[r"^api/v1/agent/", r"^mcp/?$", r"^healthz$", r"^git/"],
)
# Behind a TLS-terminating proxy: the header it sets to "https" (e.g. X-Forwarded-Proto). Set
# it only when the proxy always sets (or strips) that header, or clients could forge it.
_proxy_ssl_header = env.str("OZWEB_SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# HSTS: browsers remember it for this long, so start small and raise it (31536000 = a year).
SECURE_HSTS_SECONDS = env.int("OZWEB_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("OZWEB_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("OZWEB_SECURE_HSTS_PRELOAD", default=False)
# Every page: only this origin's scripts, styles, images and connections (the websockets are
# same-origin, which 'self' covers); nothing inline, no plugins, no framing, no foreign forms.
# (templates/ and static/ have no inline script, style or handler; the API docs pages say what
# they need themselves: apps.api.docs.)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "template_partials",
    "axes",
    "apps.core",
    "apps.teams",
    "apps.agents",
    "apps.threads",
    "apps.runs",
    "apps.agentapi",
    "apps.artifacts",
    "apps.repos",
    "apps.providers",
    "apps.approvals",
    "apps.notifications",
    "apps.automations",
    "apps.gateway",
    "apps.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.csp.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a login refused for a lockout into its 429 (apps.core.login_lockout).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Refuses the logins of a locked-out username or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "ozweb.urls"
ASGI_APPLICATION = "ozweb.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend, with this process's writers taking turns (apps.core.backends).
    DATABASES["default"]["ENGINE"] = "apps.core.backends.sqlite3"
    # WAL lets the feed read while a run writes; the timeout rides out short write bursts.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Under ASGI every request runs in a fresh thread, and Django's connections are per thread:
    # without a pool each request would open (and fork) a new PostgreSQL connection.
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        # Parameters bound by the server: this process skips quoting every value into the SQL
        # text (bench/writes.py, one A/B run: a REST post's CPU 8.45 → 7.8 ms).
        "server_side_binding": True,
        # And the statements a connection runs often prepared (after this many runs), so that
        # PostgreSQL skips planning them: Django turns psycopg's preparing off by default
        # (for PgBouncer in transaction mode, where a connection's prepared statements may be
        # gone). An executor's take of its messages joins six tables: 1.6 ms to plan, 0.07
        # to run (bench/messaging.py --mode scaled). Behind such a pooler, set it to 0: off.
        "prepare_threshold": env.int("OZWEB_DB_PREPARE_THRESHOLD", default=5) or None,
        "pool": {
            "min_size": env.int("OZWEB_DB_POOL_MIN", default=2),
            "max_size": env.int("OZWEB_DB_POOL_MAX", default=30),
            # How long a request waits for a connection (also while PostgreSQL restarts).
            "timeout": env.float("OZWEB_DB_POOL_TIMEOUT", default=10),
        },
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # With the pool: each connection is tried (an empty query) before it is handed out. After
    # a PostgreSQL restart every idle one is dead, and each would fail its next request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = env.str("REDIS_URL", default="")
# pubsub (default): a broadcast crosses Redis once per process and fans out in-process, so
# cost per viewer stays local; core: channels_redis's list-based layer (one Redis message per
# viewer, with capacity and expiry).
OZWEB_REDIS_LAYER = env.str("OZWEB_REDIS_LAYER", default="pubsub")
if REDIS_URL and OZWEB_REDIS_LAYER == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": env.str("OZWEB_CHANNEL_PREFIX", default="ozweb"),
                "capacity": 2000,
                "expiry": 30,
            },
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": env.str("OZWEB_CHANNEL_PREFIX", default="ozweb"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "apps.core.layers.EmbeddedChannelLayer",
            "CONFIG": {"capacity": 2000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
OZWEB_SERVE_STATIC = env.bool("OZWEB_SERVE_STATIC", default=True)
MEDIA_ROOT = env.str("OZWEB_MEDIA_ROOT", default=str(VAR_DIR / "media"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Bodies above this are refused with a clear error rather than stored (threads stay fast).
OZWEB_MAX_MESSAGE_BYTES = env.int("OZWEB_MAX_MESSAGE_BYTES", default=64 * 1024)
# JSON bodies nested deeper than this are refused with a 400 (REST API, agent doors, sockets).
OZWEB_JSON_MAX_DEPTH = env.int("OZWEB_JSON_MAX_DEPTH", default=64)
# The largest body an inbound trigger (/hooks/<token>/) takes; larger is a 413.
OZWEB_HOOK_MAX_BYTES = env.int("OZWEB_HOOK_MAX_BYTES", default=1024 * 1024)
# Bytes a live viewer may leave unread before its websocket is dropped (under daphne): its
# client reconnects and resumes from its last seq instead of the server holding it all.
OZWEB_WS_MAX_BUFFERED_BYTES = env.int("OZWEB_WS_MAX_BUFFERED_BYTES", default=4 * 1024 * 1024)
# Key for agent secrets at rest. Defaults to one derived from SECRET_KEY.
OZWEB_SECRETS_KEY = env.str("OZWEB_SECRETS_KEY", default="")
OZWEB_FEED_PAGE_SIZE = 50

# Artifacts: Django's storage API. Filesystem by default; any S3-compatible store with
# OZWEB_S3_BUCKET (+ OZWEB_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID/SECRET, region) and django-storages.
OZWEB_ARTIFACT_MAX_BYTES = env.int("OZWEB_ARTIFACT_MAX_BYTES", default=10 * 1024 * 1024)
OZWEB_S3_BUCKET = env.str("OZWEB_S3_BUCKET", default="")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if OZWEB_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": OZWEB_S3_BUCKET,
            "endpoint_url": env.str("OZWEB_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("OZWEB_S3_REGION", default="") or None,
            "default_acl": None,
            "file_overwrite": True,
        },
    }

# -- runs -------------------------------------------------------------------------------------
# Where queued runs go: "celery" (scaled), "inprocess" (a thread pool in the web process), or
# "manual" (nothing: tests and scripts call execute_run themselves).
OZWEB_RUN_DISPATCH = env.str("OZWEB_RUN_DISPATCH", default="celery" if REDIS_URL else "inprocess")
OZWEB_INPROCESS_WORKERS = env.int("OZWEB_INPROCESS_WORKERS", default=4)
# "auto": Docker when an engine answers, else local subprocesses (shown as unsandboxed).
OZWEB_SANDBOX = env.str("OZWEB_SANDBOX", default="auto")
OZWEB_SANDBOX_NETWORK = env.str("OZWEB_SANDBOX_NETWORK", default="")
OZWEB_SANDBOX_MEMORY_BYTES = env.int("OZWEB_SANDBOX_MEMORY_BYTES", default=2 * 1024**3)
OZWEB_SANDBOX_CPUS = env.float("OZWEB_SANDBOX_CPUS", default=2.0)
OZWEB_SANDBOX_PIDS = env.int("OZWEB_SANDBOX_PIDS", default=512)
# The worker's relay sockets for its containers (apps/runs/sandboxes/relay.py); "" = a short
# folder under the system temp dir (a socket path must fit in 108 bytes).
OZWEB_SANDBOX_SOCKET_DIR = env.str("OZWEB_SANDBOX_SOCKET_DIR", default="")
# Agents with network "egress": the ports their allowlisted HTTPS may go to, and whether a
# domain may resolve to a loopback/private address (never in production: that is the host).
OZWEB_EGRESS_PORTS = [int(p) for p in env.list("OZWEB_EGRESS_PORTS", default=["443"])]
OZWEB_EGRESS_ALLOW_PRIVATE = env.bool("OZWEB_EGRESS_ALLOW_PRIVATE", default=False)
OZWEB_HARNESS_IMAGE = env.str("OZWEB_HARNESS_IMAGE", default=harness_image.HARNESS_IMAGE)
# Per-agent workspaces and homes on the worker host (mounted into containers).
OZWEB_AGENT_DATA_DIR = env.str("OZWEB_AGENT_DATA_DIR", default=str(VAR_DIR / "agents"))
# Team repositories (bare git repositories) live here: <dir>/<team id>/<repo id>.git.
OZWEB_REPOS_DIR = env.str("OZWEB_REPOS_DIR", default=str(VAR_DIR / "repos"))
# Importing a repository from a local path or file:// URL reads the server's disk: off by default.
# How long a review page may lex code never highlighted before; the rest of a big change is
# shown plain and coloured as it scrolls into view.
OZWEB_REVIEW_HIGHLIGHT_MS = env.float("OZWEB_REVIEW_HIGHLIGHT_MS", default=30.0)
OZWEB_ALLOW_LOCAL_REPO_SOURCES = env.bool("OZWEB_ALLOW_LOCAL_REPO_SOURCES", default=False)
# Labels containers with this install's name, so two installs on one engine never mix runs.
OZWEB_INSTANCE = env.str("OZWEB_INSTANCE", default="default")
# How code inside sandboxes reaches ozweb (the app's own loopback URL with the host network).
OZWEB_AGENT_API_URL = env.str("OZWEB_AGENT_API_URL", default="http://127.0.0.1:8000")
# Agents call ozweb by that address: its host is one of ours (the agent doors check Host).
_agent_api_host = urlsplit(OZWEB_AGENT_API_URL).hostname
if _agent_api_host and "*" not in ALLOWED_HOSTS:
    _agent_api_host = f"[{_agent_api_host}]" if ":" in _agent_api_host else _agent_api_host
    if _agent_api_host not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_agent_api_host)
# Where the example command agents live inside the harness image.
OZWEB_CONTAINER_AGENTS_DIR = harness_image.CONTAINER_AGENTS_DIR
# A run whose worker has not sent a heartbeat for this long is reconciled.
OZWEB_RUN_STALE_SECONDS = env.int("OZWEB_RUN_STALE_SECONDS", default=30)
# The model gateway (apps/gateway): seconds to connect to a provider, and the longest pause
# between two chunks of its answer (a model may think for minutes before it streams).
OZWEB_GATEWAY_CONNECT_TIMEOUT = env.float("OZWEB_GATEWAY_CONNECT_TIMEOUT", default=10.0)
OZWEB_GATEWAY_READ_TIMEOUT = env.float("OZWEB_GATEWAY_READ_TIMEOUT", default=600.0)

# Outgoing webhooks (apps.notifications): public addresses only unless this is true (tests, a
# private network); each attempt's timeout; attempts in all, the n-th retry waiting
# BACKOFF × 2^(n-1) seconds.
OZWEB_ALLOW_PRIVATE_WEBHOOKS = env.bool("OZWEB_ALLOW_PRIVATE_WEBHOOKS", default=False)
OZWEB_WEBHOOK_TIMEOUT_SECONDS = env.float("OZWEB_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
OZWEB_WEBHOOK_MAX_ATTEMPTS = env.int("OZWEB_WEBHOOK_MAX_ATTEMPTS", default=5)
OZWEB_WEBHOOK_BACKOFF_SECONDS = env.float("OZWEB_WEBHOOK_BACKOFF_SECONDS", default=10.0)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = env.str("OZWEB_CELERY_QUEUE", default="ozweb")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = False
OZWEB_RECONCILE_SECONDS = env.float("OZWEB_RECONCILE_SECONDS", default=15.0)
# How often schedulers look for due schedules (apps.automations.firing): beat, or embedded.
OZWEB_SCHEDULE_TICK_SECONDS = env.float("OZWEB_SCHEDULE_TICK_SECONDS", default=15.0)
CELERY_BEAT_SCHEDULE = {
    "runs.reconcile": {"task": "runs.reconcile", "schedule": OZWEB_RECONCILE_SECONDS},
    "automations.tick": {"task": "automations.tick", "schedule": OZWEB_SCHEDULE_TICK_SECONDS},
}

# -- throttles and lockouts -------------------------------------------------------------------
# Counted in the default cache (apps.core.throttling): Redis when REDIS_URL is set, so that
# every process shares the counts; this process's memory otherwise.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("OZWEB_CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": env.str("OZWEB_CACHE_PREFIX", default="ozweb"),
            # A Redis that does not answer must not hold requests up (the throttles let them
            # through: apps.core.throttling).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            # One small key per client and window: culling at the default 300 would forget
            # counts under load.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
# Reverse proxies in front that append to X-Forwarded-For (0: the peer's address is the
# client's). Throttles, lockouts and websocket caps count by that address.
OZWEB_PROXY_COUNT = env.int("OZWEB_PROXY_COUNT", default=0)
# Rates as `<count>/<second|minute|hour|day>`. REST API: each user (token or session), and
# each address of unauthenticated requests.
OZWEB_THROTTLE_USER = env.str("OZWEB_THROTTLE_USER", default="3000/minute")
OZWEB_THROTTLE_ANON = env.str("OZWEB_THROTTLE_ANON", default="120/minute")
# Agent doors (REST verbs and MCP): each run token. Agents are chatty; this only stops a loop.
OZWEB_THROTTLE_RUN = env.str("OZWEB_THROTTLE_RUN", default="6000/minute")
# Refused tokens (API, run and websocket tokens) per address; past it, every token presented
# from that address gets 429 until the window ends.
OZWEB_THROTTLE_AUTH_FAILURES = env.str("OZWEB_THROTTLE_AUTH_FAILURES", default="30/minute")
# Logins (/login/, /admin/login/; django-axes): a username, or an address, is locked out after
# this many failures within the cool-off; each further failure doubles the cool-off, up to the
# maximum (apps.core.login_lockout).
AXES_FAILURE_LIMIT = env.int("OZWEB_LOGIN_FAILURE_LIMIT", default=5)
OZWEB_LOGIN_COOLOFF_SECONDS = env.int("OZWEB_LOGIN_COOLOFF_SECONDS", default=300)
OZWEB_LOGIN_COOLOFF_MAX_SECONDS = env.int("OZWEB_LOGIN_COOLOFF_MAX_SECONDS", default=86400)
AXES_COOLOFF_TIME = "apps.core.login_lockout.login_cool_off"
AXES_USE_ATTEMPT_EXPIRATION = True  # each record expires after its own (backed-off) cool-off
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks out
AXES_LOCKOUT_CALLABLE = "apps.core.login_lockout.login_lockout_response"
AXES_CLIENT_IP_CALLABLE = "apps.core.throttling.request_address"
AXES_VERBOSE = False  # no banner in every manage.py command's output; lockouts are still logged
# Websockets open at once per user and per address, counted by each server process.
OZWEB_WS_MAX_PER_USER = env.int("OZWEB_WS_MAX_PER_USER", default=100)
OZWEB_WS_MAX_PER_ADDRESS = env.int("OZWEB_WS_MAX_PER_ADDRESS", default=300)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token authentication, with refused tokens counted per address.
        "apps.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.api.throttles.UserThrottle",
        "apps.api.throttles.AnonymousThrottle",
    ],
    # JSON bodies only (artifact uploads also take multipart: their view says so).
    "DEFAULT_PARSER_CLASSES": ["apps.api.parsers.DepthLimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "apps.api.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ozweb API",
    "DESCRIPTION": (
        "Teams of AI coding agents and the humans who steer them.\n\n"
        "Bodies are JSON, each value of the type given here (no coercion); text never holds "
        "NUL characters. Lists are pages (`limit`, `offset`). Every error is "
        '`{"detail", "code", "field"?, "errors"?}`; over a throttle, 429 with `Retry-After`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # 3.1: full JSON Schema (an environment's variable names are `propertyNames`).
    "OAS_VERSION": "3.1.0",
    # `<id:...>` in the URLs (apps.core.ids.IdConverter): 1 to 2^63 - 1.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    },
    "ENUM_NAME_OVERRIDES": {
        "MessageKindEnum": "apps.threads.models.MessageKind",
        "ArtifactKindEnum": "apps.artifacts.models.ArtifactKind",
        "ThreadKindEnum": "apps.threads.models.ThreadKind",
        "HarnessEnum": "apps.agents.models.Harness",
        "TriggerKindEnum": "apps.automations.models.TriggerKind",
        "FiringStatusEnum": "apps.automations.models.FiringStatus",
        "ProviderKindEnum": "apps.providers.models.ProviderKind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("OZWEB_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # One line per model request through the gateway otherwise (apps/gateway/door.py).
        "httpx": {"level": "WARNING"},
    },
}
