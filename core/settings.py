"""The service's one settings module: every knob is an environment variable with a default
that works on a fresh machine (SQLite in DATA_DIR, in-process jobs). See README "Settings"."""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name, default=False):
    return str(env(name, default)).lower() in ("1", "true", "yes", "on")


def env_int(name, default):
    return int(env(name, default))


DATA_DIR = Path(env("DATA_DIR", BASE_DIR / "data"))


def _private_dir(path):
    """Create `path` readable by this user only (0700), and tighten it if it exists, is ours
    and others may read it: it holds the SQLite database and the generated secret key."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        stat = path.stat()
        if stat.st_uid == os.getuid() and stat.st_mode & 0o077:
            path.chmod(0o700)
    except OSError:  # not ours to change (read-only mount...): leave it
        pass


_private_dir(DATA_DIR)


def _secret_key():
    """Use SECRET_KEY, else one generated once and kept in DATA_DIR so sessions survive restarts."""
    if env("SECRET_KEY"):
        return env("SECRET_KEY")
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Keys of the storage secrets encrypted in the database (io_storages/fields.py): the first
# encrypts, all decrypt. Fernet keys or any strings (a key is derived from them); default:
# derived from SECRET_KEY. Rotating: README "Rotating the storage secret keys".
STORAGE_SECRET_KEYS = [k.strip() for k in env("STORAGE_SECRET_KEYS", "").split(",") if k.strip()] or [SECRET_KEY]
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env("ALLOWED_HOSTS", "*").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Public base URL of the service (e.g. https://labels.example.com), used in the links it
# generates. Containers also set HOSTNAME to the machine name: only a URL counts; otherwise
# links are built from the request's own host.
HOSTNAME = env("HOSTNAME", "")
HOSTNAME = HOSTNAME.rstrip("/") if HOSTNAME.startswith(("http://", "https://")) else ""

# --- HTTPS -------------------------------------------------------------------
# Behind a TLS-terminating proxy, name the header it sets (e.g. `X-Forwarded-Proto`, or
# `X-Forwarded-Proto=https` for another value) so requests count as secure; never set it
# unless that proxy always sets or strips the header.
_ssl_header, _, _ssl_value = env("SECURE_PROXY_SSL_HEADER", "").partition("=")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _ssl_header.strip().upper().replace("-", "_").removeprefix("HTTP_"), _ssl_value.strip() or "https")
    if _ssl_header.strip()
    else None
)
# Cookies only over HTTPS: on by default when the public URL (HOSTNAME) is https.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HOSTNAME.startswith("https://"))
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HOSTNAME.startswith("https://"))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# HSTS (sent on secure requests only): 0 is off; e.g. 31536000 once HTTPS works everywhere.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "core",  # before django_rq: its `rqworker` command replaces django-rq's (all queues by default)
    "django_rq",
    "projects",
    "tasks",
    "io_storages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # admin/API-docs static files without nginx
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
# Persistent connections (checked before reuse): a new connection per request costs more
# than a small resolve request itself.
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_PREPARED_STATEMENTS", False):
    # Server-side binding lets psycopg prepare the queries a connection runs repeatedly (token,
    # storage of a resolve): 0.95 -> 0.3 ms of PostgreSQL CPU per proxied read. Off by default:
    # it changes how every query is bound, and transaction-mode poolers (PgBouncer < 1.21)
    # cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the in-process sync write while API requests read. IMMEDIATE transactions take
    # the write lock when they begin, so a busy database makes them wait (up to `timeout` s):
    # a default (deferred) transaction that reads, then writes, fails at once with "database is
    # locked" when another thread wrote in between, whatever the timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        init_command="PRAGMA journal_mode=WAL;", timeout=30, transaction_mode="IMMEDIATE"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)

# --- request limits (core.api answers a request over one with a 4xx naming the setting) ---
# Largest body read into memory (JSON and form fields; uploaded files are spooled): 100 MB,
# not Django's 2.5 MB. DRF reads a JSON body whole before parsing, and the task import
# validates every task before it creates any, so a streamed parse would not lower the peak;
# a task import of some MB is a normal day for a labeling team, and so are annotations of
# some MB (brush masks). Label Studio itself defaults to 250 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 100 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 1000)  # form fields / query parameters
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 100)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # core.api.JSONParser: JSON nested too deeply for Python's json is a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "core.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# This service's version: `version` of every error answer (core.api.error_body; Label Studio
# puts its own there) and of the OpenAPI schema.
VERSION = "1.0.0"
SPECTACULAR_SETTINGS = {
    "TITLE": "Cloud storages API",
    "DESCRIPTION": "Label Studio-compatible projects, tasks and cloud storage API.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- background jobs -------------------------------------------------------
# Empty or unreachable REDIS_URL: jobs run in-process (see core/jobs.py), in a pool of
# JOBS_WORKERS threads of the web process ("background"), or in the caller ("foreground":
# tests and one-off scripts; the request then lasts as long as the sync).
REDIS_URL = env("REDIS_URL", "")
RQ_ASYNC = env_bool("RQ_ASYNC", True)  # false: jobs go through Redis but run at once (tests)
JOBS_IN_PROCESS = env("JOBS_IN_PROCESS", "background")
if JOBS_IN_PROCESS not in ("background", "foreground"):
    raise ImproperlyConfigured(f"JOBS_IN_PROCESS must be 'background' or 'foreground', not {JOBS_IN_PROCESS!r}")
JOBS_WORKERS = max(1, env_int("JOBS_WORKERS", 2))
STORAGE_SYNC_QUEUE = env("STORAGE_SYNC_QUEUE", "low")
STORAGE_EXPORT_QUEUE = env("STORAGE_EXPORT_QUEUE", "default")
# Every queue the service enqueues on, most urgent first: a bare `manage.py rqworker` serves
# them all (core/management/commands/rqworker.py).
RQ_QUEUE_NAMES = list(dict.fromkeys(["critical", "high", "default", STORAGE_EXPORT_QUEUE, STORAGE_SYNC_QUEUE, "low"]))
_rq_url = REDIS_URL or "redis://127.0.0.1:6379/0"
RQ_QUEUES = {
    name: {"URL": _rq_url, "DEFAULT_TIMEOUT": env_int("RQ_DEFAULT_TIMEOUT", 3600 * 24), "ASYNC": RQ_ASYNC}
    for name in RQ_QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = True
# Scheduled syncs: every STORAGE_SCHEDULE_TICK_SECONDS a job starts the syncs that are due
# (io_storages/schedule.py); a storage's sync_interval_minutes may not be shorter than
# STORAGE_SYNC_MIN_INTERVAL_MINUTES (each sync lists the whole bucket).
STORAGE_SYNC_MIN_INTERVAL_MINUTES = float(env("STORAGE_SYNC_MIN_INTERVAL_MINUTES", 5))
STORAGE_SCHEDULE_TICK_SECONDS = float(env("STORAGE_SCHEDULE_TICK_SECONDS", 30))
#: dotted path of a function -> seconds between its runs (core/jobs.py, core/cron.py)
PERIODIC_JOBS = {"io_storages.schedule.start_due_syncs": STORAGE_SCHEDULE_TICK_SECONDS}

# --- storages ---------------------------------------------------------------
SSRF_PROTECTION_ENABLED = env_bool("SSRF_PROTECTION_ENABLED", True)
# Storages whose credentials are empty use the server's own identity (boto3's default chain,
# Google's default credentials or anonymous emulator access, AZURE_BLOB_ACCOUNT_NAME/KEY) only
# when this is true; otherwise they are refused (400 on save, an error on sync).
STORAGE_SERVER_CREDENTIALS_ENABLED = env_bool("STORAGE_SERVER_CREDENTIALS_ENABLED", False)
# Token endpoints a GCS service-account key may name besides Google's own (comma-separated URLs).
GCS_TRUSTED_TOKEN_URIS = [u.strip() for u in env("GCS_TRUSTED_TOKEN_URIS", "").split(",") if u.strip()]
STORAGE_IN_PROGRESS_TIMER = float(env("STORAGE_IN_PROGRESS_TIMER", 5))
STORAGE_SYNC_BATCH_SIZE = env_int("STORAGE_SYNC_BATCH_SIZE", 1000)
FUTURE_SAVE_TASK_TO_STORAGE = env_bool("FUTURE_SAVE_TASK_TO_STORAGE", False)

RESOLVER_PROXY_BUFFER_SIZE = env_int("RESOLVER_PROXY_BUFFER_SIZE", 64 * 1024)
RESOLVER_PROXY_TIMEOUT = env_int("RESOLVER_PROXY_TIMEOUT", 10)
RESOLVER_PROXY_MAX_RANGE_SIZE = env_int("RESOLVER_PROXY_MAX_RANGE_SIZE", 7 * 1024 * 1024)
RESOLVER_PROXY_CACHE_TIMEOUT = env_int("RESOLVER_PROXY_CACHE_TIMEOUT", 3600)

# Azure: account defaults for storages that leave them empty, and the blob endpoint, e.g.
# http://127.0.0.1:10000/devstoreaccount1 (Azurite) or https://{account_name}.blob.core.usgovcloudapi.net
AZURE_BLOB_ACCOUNT_NAME = env("AZURE_BLOB_ACCOUNT_NAME", "")
AZURE_BLOB_ACCOUNT_KEY = env("AZURE_BLOB_ACCOUNT_KEY", "")
AZURE_BLOB_ENDPOINT = env("AZURE_BLOB_ENDPOINT", "https://{account_name}.blob.core.windows.net")

# Local files storages exist only while LOCAL_FILES_SERVING_ENABLED. Organization N owns
# LOCAL_FILES_DOCUMENT_ROOT/N/ (created by the operator); its storages may only use
# sub-directories of it. The default root lies beside the database and the secret key in
# DATA_DIR, never above them (README "Local files").
LOCAL_FILES_SERVING_ENABLED = env_bool("LOCAL_FILES_SERVING_ENABLED", False)
LOCAL_FILES_DOCUMENT_ROOT = env("LOCAL_FILES_DOCUMENT_ROOT", str(DATA_DIR / "local-files"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"botocore": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
