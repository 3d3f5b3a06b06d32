"""Eye-SCREAM settings.

Everything comes from environment variables, with safe embedded defaults:
SQLite, the in-memory channel layer, in-process scoring and eager Celery tasks.
Setting ``REDIS_URL`` and ``DATABASE_URL`` switches to the scaled mode
(Redis channel layer and Celery broker, PostgreSQL); nothing else changes.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from eyescream_site.cpu_priority import parse_nice
from eyescream_site.secret_key import load_or_create

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Where runtime data lives (SQLite file, snippets, images). Not committed.
DATA_DIR = Path(os.environ.get("EYESCREAM_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)  # SQLite cannot create its file's folder

# The scaled mode (Redis and PostgreSQL) is a production deployment: it refuses to start
# without its secrets or with DEBUG, and it sends cookies over HTTPS only (below).
SCALED_MODE = bool(os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL"))
MIN_SECRET_LENGTH = 50


def required_secret(name: str) -> str:
    value = os.environ.get(name, "")
    if len(value) < MIN_SECRET_LENGTH or len(set(value)) < 5:
        raise ImproperlyConfigured(
            f"the scaled mode needs {name}: a random secret of at least {MIN_SECRET_LENGTH} "
            "characters, the same for every process "
            '(python -c "import secrets; print(secrets.token_urlsafe(50))")'
        )
    return value


if SCALED_MODE:
    SECRET_KEY = required_secret("DJANGO_SECRET_KEY")
    DEVICE_TOKEN_KEY = required_secret("EYESCREAM_DEVICE_TOKEN_KEY")
else:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or load_or_create(DATA_DIR / "secret_key")
    # Key for the HMAC of device tokens; separate from SECRET_KEY so either can rotate.
    DEVICE_TOKEN_KEY = os.environ.get("EYESCREAM_DEVICE_TOKEN_KEY", SECRET_KEY)

DEBUG = env_bool("DJANGO_DEBUG", False)  # never on unless asked for (it shows code and paths)
if DEBUG and SCALED_MODE:
    raise ImproperlyConfigured("DJANGO_DEBUG is for development: the scaled mode refuses it")

# HTTPS (the scaled mode's default; EYESCREAM_HTTPS=0 only for a closed test network): cookies
# only over HTTPS, HSTS, plain HTTP redirected. The proxy in front terminates TLS and must set
# X-Forwarded-Proto (overwriting any the client sent).
EYESCREAM_HTTPS = env_bool("EYESCREAM_HTTPS", SCALED_MODE)
if EYESCREAM_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("EYESCREAM_SSL_REDIRECT", True)
    # Probes and Prometheus ask each daphne directly, over plain HTTP on its own port.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("EYESCREAM_HSTS_SECONDS", 31_536_000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("EYESCREAM_HSTS_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("EYESCREAM_HSTS_PRELOAD", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "daphne",
    "eyescream_site.admin_config.EyescreamAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The command-line entry points (train, evaluate, detect, ...); before channels, whose
    # runworker it replaces (eyescream_site/management/commands/runworker.py).
    "eyescream_site",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "devices",
    "alerts",
    "notifications",
    "registry",
    "feedback",
    # After the apps whose model permissions it grants to the Admins role (post_migrate order).
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "eyescream_site.security_headers.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "eyescream_site.urls"
ASGI_APPLICATION = "eyescream_site.asgi.application"
WSGI_APPLICATION = "eyescream_site.wsgi.application"

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
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # WAL lets readers and the writer overlap; IMMEDIATE transactions take the write
            # lock up front, so concurrent writers wait (up to the timeout) instead of failing
            # with "database is locked" on a lock upgrade.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "eyescream_site.channel_layer.BulkRedisChannelLayer",
            # redis-py reads time out after 5 s by default, the same as channels_redis's
            # blocking pop: an idle receive would fail. Give reads room beyond the pop.
            "CONFIG": {
                # redis-py 8 refuses a command past its pool size instead of waiting.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 1000}],
                "capacity": 5000,
                "expiry": 10,
            },
        }
    }
    # Shared by every process (login throttling counts failures here).
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis broker in scaled mode; eager (in-process) in embedded mode.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
# JSON-lines logs (EYESCREAM_LOG_FORMAT, below): Celery keeps Django's logging instead of its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = (
    os.environ.get("EYESCREAM_LOG_FORMAT", "text").strip().lower() != "json"
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TZ", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# daphne (not only runserver) serves the apps' static files without a collectstatic step.
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The shipped detection model: a folder holding config.json + weights.pt. It is registered as
# a model version after every migrate (registry/services.py); the active version is chosen in
# the registry (docs/models.md#model-registry); with an empty registry this folder is used.
EYESCREAM_MODEL_DIR = Path(
    os.environ.get("EYESCREAM_MODEL_DIR", BASE_DIR / "detection" / "shipped" / "default")
)
# Where registered model versions' files are kept (one folder v<N>/ each); every scoring
# worker must see the same folder at the same path.
EYESCREAM_MODEL_STORE = Path(os.environ.get("EYESCREAM_MODEL_STORE", MEDIA_ROOT / "models"))
# How often each live process reads the active versions from the database (seconds).
EYESCREAM_MODEL_REFRESH_S = float(os.environ.get("EYESCREAM_MODEL_REFRESH_S", "1.0"))

# Retraining on operators' verdicts (feedback/, docs/models.md "Retraining on feedback"): the
# base packs trained on besides the feedback (comma-separated folders; default the pack the
# shipped model was trained on), the pack whose held-out sources every candidate is measured
# on, how many days of each site's newest feedback are held back for evaluation, and where
# the runs' exports, candidates and reports are written.
_SHARED_REAL_V1 = BASE_DIR.parent / "shared" / "datasets" / "real-v1"
EYESCREAM_RETRAIN_BASE_PACKS = [
    Path(p.strip())
    for p in os.environ.get("EYESCREAM_RETRAIN_BASE_PACKS", str(_SHARED_REAL_V1)).split(",")
    if p.strip()
]
EYESCREAM_RETRAIN_FIXED_PACK = Path(
    os.environ.get("EYESCREAM_RETRAIN_FIXED_PACK", str(_SHARED_REAL_V1))
)
EYESCREAM_RETRAIN_HOLDOUT_DAYS = float(os.environ.get("EYESCREAM_RETRAIN_HOLDOUT_DAYS", 7))
EYESCREAM_RETRAIN_DIR = Path(os.environ.get("EYESCREAM_RETRAIN_DIR", DATA_DIR / "retrain"))
# The optional automatic promotion rule: after a run registers its candidate, promote it where
# its parent served only if its fixed-pack scream recall drops by at most the tolerance and it
# raises fewer false alerts on the held-back feedback (off: an admin promotes on /models/).
EYESCREAM_RETRAIN_AUTO_PROMOTE = env_bool("EYESCREAM_RETRAIN_AUTO_PROMOTE", False)
# An unfinished retraining job whose row has not moved for this long is ended as failed.
EYESCREAM_RETRAIN_STALE_S = float(os.environ.get("EYESCREAM_RETRAIN_STALE_S", "1800"))
EYESCREAM_RETRAIN_RECALL_TOLERANCE = float(
    os.environ.get("EYESCREAM_RETRAIN_RECALL_TOLERANCE", "0.02")
)

# EYESCREAM_LOG_FORMAT=json: one JSON object a line, with device_id, site_id and alert_id where
# the line is about one (eyescream_site/log_format.py); "text" (default): human-readable.
EYESCREAM_LOG_FORMAT = os.environ.get("EYESCREAM_LOG_FORMAT", "text").strip().lower()
if EYESCREAM_LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(
        f'EYESCREAM_LOG_FORMAT must be "text" or "json", got {EYESCREAM_LOG_FORMAT!r}'
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "timed": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "eyescream_site.log_format.JsonLinesFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if EYESCREAM_LOG_FORMAT == "json" else "timed",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}},
}

# ---------------------------------------------------------------- product settings (env)
# Alerts: snippet format, pictures, retention (see docs/operations.md).
EYESCREAM_SNIPPET_FORMAT = os.environ.get("EYESCREAM_SNIPPET_FORMAT", "flac")
# An alert's snippet holds the whole incident, pre-roll to post-roll, up to this many seconds
# (longer incidents keep their first EYESCREAM_SNIPPET_MAX_S s of audio; docs/operations.md).
EYESCREAM_SNIPPET_MAX_S = float(os.environ.get("EYESCREAM_SNIPPET_MAX_S", 120))
if not 3.0 < EYESCREAM_SNIPPET_MAX_S <= 3600.0:
    raise ImproperlyConfigured("EYESCREAM_SNIPPET_MAX_S must be more than 3 and at most 3600")
EYESCREAM_ALERT_IMAGES = env_bool("EYESCREAM_ALERT_IMAGES", True)
EYESCREAM_ALERT_RETENTION_DAYS = int(os.environ.get("EYESCREAM_ALERT_RETENTION_DAYS", 90))
EYESCREAM_REVIEWED_ALERT_RETENTION_DAYS = int(
    os.environ.get("EYESCREAM_REVIEWED_ALERT_RETENTION_DAYS", 365)
)
# Notifications (docs/integrations.md): the address receivers reach the product at (links in
# messages), deliveries' timeout, attempts and back-off, embedded mode's delivery threads.
EYESCREAM_PUBLIC_URL = os.environ.get("EYESCREAM_PUBLIC_URL", "")
EYESCREAM_DELIVERY_TIMEOUT_S = float(os.environ.get("EYESCREAM_DELIVERY_TIMEOUT_S", 5))
EYESCREAM_DELIVERY_ATTEMPTS = int(os.environ.get("EYESCREAM_DELIVERY_ATTEMPTS", 5))
EYESCREAM_DELIVERY_BACKOFF_S = float(os.environ.get("EYESCREAM_DELIVERY_BACKOFF_S", 10))
EYESCREAM_DELIVERY_BACKOFF_MAX_S = float(os.environ.get("EYESCREAM_DELIVERY_BACKOFF_MAX_S", 600))
EYESCREAM_DELIVERY_THREADS = int(os.environ.get("EYESCREAM_DELIVERY_THREADS", 4))
EYESCREAM_ESCALATION_SWEEP_INTERVAL_S = float(
    os.environ.get("EYESCREAM_ESCALATION_SWEEP_INTERVAL_S", 60)
)
# E-mail destinations: Django's mail settings from the environment (SMTP by default).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "eyescream@localhost")
# Operators' pages: the alarm repeats this often while alerts wait for review (0: once each).
EYESCREAM_ALARM_REPEAT_S = float(os.environ.get("EYESCREAM_ALARM_REPEAT_S", 30))
# Devices: when an online device that sends nothing is marked offline.
EYESCREAM_DEVICE_OFFLINE_AFTER_S = float(os.environ.get("EYESCREAM_DEVICE_OFFLINE_AFTER_S", 60))
EYESCREAM_PURGE_INTERVAL_S = float(os.environ.get("EYESCREAM_PURGE_INTERVAL_S", 3600))
EYESCREAM_OFFLINE_SWEEP_INTERVAL_S = float(os.environ.get("EYESCREAM_OFFLINE_SWEEP_INTERVAL_S", 30))
# Live alerts: threads per kind (openings, updates) that write them in a daphne process on
# PostgreSQL (SQLite has one writer thread). Each competes with the event loop for the GIL.
EYESCREAM_ALERT_THREADS = int(os.environ.get("EYESCREAM_ALERT_THREADS", 1))
if EYESCREAM_ALERT_THREADS < 1:
    raise ImproperlyConfigured(
        f"EYESCREAM_ALERT_THREADS must be 1 or more, got {EYESCREAM_ALERT_THREADS}"
    )
# Live alerts: written by two child processes of each daphne ("process": openings, updates),
# which leave its GIL to the event loop that serves the streams (the scaled mode's default), or
# by threads of daphne itself ("thread": embedded mode, where SQLite has one writer).
EYESCREAM_ALERT_WRITER = os.environ.get(
    "EYESCREAM_ALERT_WRITER", "process" if REDIS_URL and DATABASE_URL else "thread"
)
if EYESCREAM_ALERT_WRITER not in ("thread", "process"):
    raise ImproperlyConfigured(
        f'EYESCREAM_ALERT_WRITER must be "thread" or "process", got {EYESCREAM_ALERT_WRITER!r}'
    )
# CPU priority (eyescream_site/cpu_priority.py): daphne and runworker take the nice value
# EYESCREAM_LIVE_NICE when set (raising a priority needs root or CAP_SYS_NICE); train, evaluate
# and detect take EYESCREAM_BATCH_PRIORITY, Celery workers EYESCREAM_TASK_PRIORITY ("idle":
# SCHED_IDLE, or a nice value), so that they run on the CPU time the live path leaves.
try:
    EYESCREAM_LIVE_NICE = parse_nice("EYESCREAM_LIVE_NICE", os.environ.get("EYESCREAM_LIVE_NICE"))
    EYESCREAM_BATCH_PRIORITY = parse_nice(
        "EYESCREAM_BATCH_PRIORITY",
        os.environ.get("EYESCREAM_BATCH_PRIORITY", "idle"),
        idle_allowed=True,
    )
    EYESCREAM_TASK_PRIORITY = parse_nice(
        "EYESCREAM_TASK_PRIORITY",
        os.environ.get("EYESCREAM_TASK_PRIORITY", "idle"),
        idle_allowed=True,
    )
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Scoring workers write a heartbeat to Redis this often (live/heartbeat.py); one unseen for
# three intervals is counted dead by /readyz and /metrics.
EYESCREAM_HEARTBEAT_INTERVAL_S = float(os.environ.get("EYESCREAM_HEARTBEAT_INTERVAL_S", 5))
# /metrics (eyescream_site/metrics.py): a request carrying "Authorization: Bearer <token>" is
# served from anywhere; one without, only from these networks (comma-separated CIDRs; loopback
# by default, none by default when a token is set).
EYESCREAM_METRICS_TOKEN = os.environ.get("EYESCREAM_METRICS_TOKEN", "")
EYESCREAM_METRICS_NETWORKS = [
    n.strip()
    for n in os.environ.get(
        "EYESCREAM_METRICS_NETWORKS", "" if EYESCREAM_METRICS_TOKEN else "127.0.0.0/8,::1/128"
    ).split(",")
    if n.strip()
]
# Scoring: how long a stream waits for a scoring worker before retrying / scoring inline.
EYESCREAM_SCORE_TIMEOUT_S = float(os.environ.get("EYESCREAM_SCORE_TIMEOUT_S", 1.0))
# Map tiles: any XYZ tile URL, or "none" on a closed network (the map works without tiles).
# Login throttling (accounts.login_throttle): failures that lock a user name / an address out.
EYESCREAM_LOGIN_FAILURES = int(os.environ.get("EYESCREAM_LOGIN_FAILURES", 5))
EYESCREAM_LOGIN_ADDRESS_FAILURES = int(os.environ.get("EYESCREAM_LOGIN_ADDRESS_FAILURES", 30))
EYESCREAM_LOGIN_LOCKOUT_S = float(os.environ.get("EYESCREAM_LOGIN_LOCKOUT_S", 900))

# Device WebSocket limits per daphne process (live.connection_limits, docs/protocol.md).
EYESCREAM_WS_ADDRESS_CONNECTIONS = int(os.environ.get("EYESCREAM_WS_ADDRESS_CONNECTIONS", 1000))
EYESCREAM_WS_ADDRESS_CONNECTS_BURST = int(
    os.environ.get("EYESCREAM_WS_ADDRESS_CONNECTS_BURST", 1000)
)
EYESCREAM_WS_ADDRESS_CONNECTS_PER_S = float(
    os.environ.get("EYESCREAM_WS_ADDRESS_CONNECTS_PER_S", 50)
)
EYESCREAM_WS_TOKEN_CONNECTS_BURST = int(os.environ.get("EYESCREAM_WS_TOKEN_CONNECTS_BURST", 60))
EYESCREAM_WS_TOKEN_CONNECTS_PER_S = float(os.environ.get("EYESCREAM_WS_TOKEN_CONNECTS_PER_S", 1))
EYESCREAM_WS_ADDRESS_BYTES_PER_S = float(
    os.environ.get("EYESCREAM_WS_ADDRESS_BYTES_PER_S", 64 * 1024 * 1024)
)

EYESCREAM_TILE_URL = os.environ.get(
    "EYESCREAM_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
)
