"""recsite settings.

Everything comes from the environment through the typed readers in recsite.env.
With nothing set, recsite runs on embedded defaults: SQLite (WAL), a file-system
Celery broker and a file-system cache under ``var/``. ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``REDIS_URL`` switch to real servers.
"""

import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from kombu import Queue

from recsite.env import env_bool, env_float, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("RECSITE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """The configured key, or one generated once and kept in var/ (never a fixed default)."""
    configured = env_str("DJANGO_SECRET_KEY", "")
    if configured:
        return configured
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the vendored API reference viewer of /docs/reference/
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "catalog",
    "campaigns",
    "recommender",
    "analytics",
    "recsite",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "recsite.api.ApiCorsMiddleware",
    # recsite.middleware.*: the library's own, with the API's requests let through (see there).
    "recsite.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "recsite.middleware.AuthenticationMiddleware",
    "recsite.middleware.OTPMiddleware",
    "recsite.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "recsite.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "recsite.urls"
WSGI_APPLICATION = "recsite.wsgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'recsite.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The test database is a file (per test process), so real worker subprocesses in the
    # tests can open the same database; an in-memory one is private to one process.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"recsite-test-{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server, the worker and beat read while one writes;
        # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
CACHES: dict[str, dict[str, object]]
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # File-based, so the web server, the worker and beat on one machine share it.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# --- Celery -----------------------------------------------------------------
# - acks_late + reject_on_worker_lost + prefetch 1: a task whose worker dies goes
#   back to the queue instead of being lost.
# - The Redis visibility timeout is short, so a dead worker's task returns in about
#   a minute, not an hour. A task running longer than that may be delivered twice:
#   long work (training) is claimed by compare-and-swap and guarded by a lease in
#   the database, and a beat task requeues runs whose lease expired.
# - Poison tasks stop: long tasks count attempts in their own row and give up after
#   TASK_MAX_ATTEMPTS (Celery itself would redeliver forever).
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", "filesystem://", schemes=("filesystem", "redis", "rediss", "amqp", "pyamqp")
)
CELERY_VISIBILITY_TIMEOUT_S = env_int("CELERY_VISIBILITY_TIMEOUT_S", 60, minimum=10)
if CELERY_BROKER_URL.startswith("filesystem"):
    from recsite import file_broker

    # kombu's transport, with each message written atomically (see there).
    CELERY_BROKER_TRANSPORT = file_broker.TRANSPORT
    CELERY_BROKER_TRANSPORT_OPTIONS = file_broker.transport_options(VAR_DIR / "broker")
elif CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_S,
        "polling_interval": 0.05,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = 500
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue("default"), Queue("training"), Queue("embedding")]
CELERY_TASK_ROUTES = {
    "catalog.tasks.products_embed": {"queue": "embedding"},
    "recommender.tasks.*train*": {"queue": "training"},
    # Beat tasks of training are short: keep them off the training queue (exact names win over patterns).
    "recommender.tasks.training_runs_reap": {"queue": "default"},
    "recommender.tasks.training_schedule_due": {"queue": "default"},
}
# Defaults for short tasks; long tasks set their own limits.
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 150
CELERY_TIMEZONE = "UTC"
# Task modules outside <app>/tasks.py that workers must load.
CELERY_IMPORTS = ["catalog.uploads"]
# Each app adds its periodic tasks here by task name.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
TRAINING_REAP_INTERVAL_S = env_float("TRAINING_REAP_INTERVAL_S", 30.0)
CELERY_BEAT_SCHEDULE["training-runs-reap"] = {
    "task": "recommender.tasks.training_runs_reap",
    "schedule": TRAINING_REAP_INTERVAL_S,
}
CELERY_BEAT_SCHEDULE["training-schedule-due"] = {"task": "recommender.tasks.training_schedule_due", "schedule": 300.0}
# campaigns: seasonal suggestions once a day; experiment schedules every minute (serving
# honours experiment times itself, this keeps stored statuses true).
CELERY_BEAT_SCHEDULE["seasonal-suggestions-refresh"] = {
    "task": "campaigns.tasks.seasonal_suggestions_refresh_all",
    "schedule": 86400.0,
}
CELERY_BEAT_SCHEDULE["experiments-advance"] = {"task": "campaigns.tasks.experiments_advance", "schedule": 60.0}
# analytics: rollups of every shop, incremental and idempotent (analytics.rollups).
CELERY_BEAT_SCHEDULE["analytics-rollups"] = {"task": "analytics.tasks.rollups_refresh_all", "schedule": 60.0}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
TRAINING_SOFT_TIME_LIMIT_S = env_int("TRAINING_SOFT_TIME_LIMIT_S", 1500, minimum=10)
TRAINING_LEASE_S = env_int("TRAINING_LEASE_S", 30, minimum=5)
TASK_MAX_ATTEMPTS = env_int("TASK_MAX_ATTEMPTS", 3, minimum=1)
# A queued run not claimed for this long lost its message: the reaper sends another.
TRAINING_REQUEUE_AFTER_S = env_int("TRAINING_REQUEUE_AFTER_S", 60, minimum=1)
# A new version is activated without a human unless its primary offline metric is worse
# than the active version's by more than this share (0.05 = 5 % relative).
TRAINING_ACTIVATION_TOLERANCE = env_float("TRAINING_ACTIVATION_TOLERANCE", 0.05)
# Offline evaluation: train on this share of event time, test on the rest, over at most
# this many sampled test shoppers.
TRAINING_TRAIN_FRACTION = env_float("TRAINING_TRAIN_FRACTION", 0.8)
TRAINING_EVAL_MAX_CASES = env_int("TRAINING_EVAL_MAX_CASES", 1000, minimum=1)
# Threads one training run may use (a training worker runs one run at a time).
TRAINING_THREADS = env_int("TRAINING_THREADS", os.cpu_count() or 1, minimum=1)

# --- Auth and console ---------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"  # the shop chooser; it goes straight on when there is one shop
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_HOURS", 0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "console/auth/locked_out.html"
OTP_TOTP_ISSUER = "recsite"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie: htmx sends the token from <body hx-headers>.
CSRF_COOKIE_HTTPONLY = True
SECURE_COOKIES = env_bool("SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- API ----------------------------------------------------------------------
# How many proxies in front of recsite append to X-Forwarded-For. 0: trust only
# REMOTE_ADDR, so a forged header cannot dodge the per-IP throttle.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
API_MAX_BODY_BYTES = 64 * 1024
API_MAX_EVENTS_PER_REQUEST = 100
API_MAX_PRODUCTS_PER_REQUEST = env_int("API_MAX_PRODUCTS_PER_REQUEST", 500, minimum=1)
API_THROTTLE_KEY_PER_MINUTE = env_int("API_THROTTLE_KEY_PER_MINUTE", 6000, minimum=1)
API_THROTTLE_IP_PER_MINUTE = env_int("API_THROTTLE_IP_PER_MINUTE", 3000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 50 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["catalog.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["catalog.api_auth.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["recsite.api.ApiThrottle"],
    "DEFAULT_PARSER_CLASSES": ["recsite.api.StrictJSONParser", "recsite.api.PlainTextJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["recsite.api.FastJSONRenderer"],
    "EXCEPTION_HANDLER": "recsite.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "recsite API",
    "DESCRIPTION": (
        "Recommendations, events and catalog for your shop. Publishable keys (pk_...) may read "
        "recommendations and send events from their allowed origins; secret keys (sk_...) stay on "
        "your server. Send the key as `Authorization: Bearer <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {"ApiKey": {"type": "http", "scheme": "bearer", "description": "pk_... or sk_..."}}
    },
    "SECURITY": [{"ApiKey": []}],
    # `check --deploy` generates the schema and fails on its warnings: choice sets that
    # several serializers share (by value) get one name each.
    "ENUM_NAME_OVERRIDES": {
        "PlacementKindEnum": "campaigns.models.PlacementKind.values",
        "ExperimentMetricEnum": "analytics.experiments.METRIC_ORDER",
    },
}

# --- Content Security Policy (django-csp 4) -------------------------------------
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https:", "http:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# Promote winner asks analytics' sample-ratio-mismatch check (campaigns.apis.srm_ok).
CAMPAIGNS_SRM_CHECK = "analytics.experiments.srm_check_passes"

# --- Static files -----------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- recsite ---------------------------------------------------------------------
ARTIFACT_DIR = Path(env_str("RECSITE_ARTIFACT_DIR", str(VAR_DIR / "artifacts")))
ARTIFACTS_KEEP_VERSIONS = env_int("RECSITE_ARTIFACTS_KEEP_VERSIONS", 5, minimum=1)
UPLOAD_DIR = Path(env_str("RECSITE_UPLOAD_DIR", str(VAR_DIR / "uploads")))
CONSOLE_UPLOAD_MAX_BYTES = env_int("CONSOLE_UPLOAD_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
# How often a serving process checks for a new active model version or catalog change.
SERVING_REFRESH_S = env_float("RECSITE_SERVING_REFRESH_S", 1.0)
# Serving (recommender.serving): where approximate-neighbour indexes are cached (built
# once per model version by its training run, or by a web process that finds none;
# read from disk by every web process).
SERVING_INDEX_DIR = Path(env_str("RECSITE_SERVING_INDEX_DIR", str(VAR_DIR / "serving-indexes")))
# The number of item vectors from which retrieval is approximate rather than exact. At
# least 1,000: a graph of a few hundred items can hold fewer than the 100 reachable
# neighbours a search asks for (hnswlib then raises instead of answering), and exact
# search over a thousand vectors takes microseconds.
SERVING_ANN_MIN_ITEMS = env_int("RECSITE_SERVING_ANN_MIN_ITEMS", 20_000, minimum=1_000)
# Whether the state refresher and the served-list flusher run as background threads
# (tests that drive them by hand switch them off).
SERVING_BACKGROUND_THREADS = env_bool("RECSITE_SERVING_BACKGROUND_THREADS", True)
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_THREADS = env_int("RECSITE_EMBEDDING_THREADS", 1, minimum=1)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}
