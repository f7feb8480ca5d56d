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
    "template_partials",
    "apps.core",
    "apps.teams",
    "apps.agents",
    "apps.threads",
    "apps.runs",
    "apps.agentapi",
    "apps.artifacts",
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
    "django_htmx.middleware.HtmxMiddleware",
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
        "pool": {
            "min_size": env.int("OZWEB_DB_POOL_MIN", default=2),
            "max_size": env.int("OZWEB_DB_POOL_MAX", default=30),
            "timeout": 10,
        },
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

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
OZWEB_HARNESS_IMAGE = env.str("OZWEB_HARNESS_IMAGE", default=harness_image.HARNESS_IMAGE)
# Per-agent workspaces and homes on the worker host (mounted into containers).
OZWEB_AGENT_DATA_DIR = env.str("OZWEB_AGENT_DATA_DIR", default=str(VAR_DIR / "agents"))
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

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = env.str("OZWEB_CELERY_QUEUE", default="ozweb")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = False
OZWEB_RECONCILE_SECONDS = env.float("OZWEB_RECONCILE_SECONDS", default=15.0)
CELERY_BEAT_SCHEDULE = {
    "runs.reconcile": {"task": "runs.reconcile", "schedule": OZWEB_RECONCILE_SECONDS},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ozweb API",
    "DESCRIPTION": "Teams of AI coding agents and the humans who steer them.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "MessageKindEnum": "apps.threads.models.MessageKind",
        "ArtifactKindEnum": "apps.artifacts.models.ArtifactKind",
        "ThreadKindEnum": "apps.threads.models.ThreadKind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("OZWEB_LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
