"""Settings, all from the environment (12-factor). Defaults run with no service at all."""

import os
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("LLMOPS_TESTING", "pytest" in sys.modules)
SECRET_KEY = os.environ.get("SECRET_KEY") or (
    "insecure-dev-key-only-for-debug-and-tests-change-me" if (DEBUG or TESTING) else ""
)
# Commands that neither serve nor sign anything (manage.py marks them) may run without one.
if not SECRET_KEY and env_bool("LLMOPS_KEYLESS_COMMAND"):
    import secrets

    SECRET_KEY = secrets.token_urlsafe(50)
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    # kernel, left to right in the import order of docs/architecture.md
    "llmops.tenancy",
    "llmops.audit",
    "llmops.notify",
    "llmops.evals",
    "llmops.catalog",
    "llmops.traces",
    # workflow apps
    "prompts",
    "reviews",
    "incidents",
]

MIDDLEWARE = [
    "llmops.common.logging.RequestLogMiddleware",
    "llmops.common.middleware.ApiBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "llmops.common.middleware.TextHygieneMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "llmops.urls"
WSGI_APPLICATION = "llmops.wsgi.application"
ASGI_APPLICATION = "llmops.asgi.application"

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
                "llmops.common.context_processors.layout",
                "llmops.tenancy.context_processors.organizations",
            ],
            "builtins": ["template_partials.templatetags.partials"],
            "libraries": {"llmops": "llmops.common.templatetags.llmops"},
        },
    }
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["TEST"] = {"NAME": ":memory:"}
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if IS_POSTGRES and TESTING:
    # A transactional test's teardown truncates every table; the audit trigger allows a
    # TRUNCATE only in a session with this setting (see audit migration 0003).
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["options"] = (
        _pg_options.get("options", "") + " -c llmops.allow_audit_truncate=on"
    ).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "llmops",
        }
    }

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# django-guardian: object grants only; a global permission never implies an object grant.
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False

# django-axes: brute-force protection on login, per username and IP, and per IP alone
# with its own higher limit against password spraying (llmops/tenancy/lockout.py).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_IP_FAILURE_LIMIT = int(os.environ.get("AXES_IP_FAILURE_LIMIT", "30"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "llmops.tenancy.lockout.LockoutHandler"
# Invitation tokens travel in a log-in's `next`: masked in axes' records.
AXES_SENSITIVE_PARAMETERS = ["next"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_ENABLED = env_bool("AXES_ENABLED", True)
# Lock-outs count per client address as the audit log sees it (TRUSTED_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "llmops.common.http.client_ip"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING

# The API accepts bodies up to 5 MB (README.md, "HTTP API"); above that the view answers 413 itself.
API_MAX_BODY_BYTES = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES + 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000

# Content-Security-Policy: nonces, no unsafe-inline, nothing from another origin.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# Security with DEBUG off: production-safe by itself (`check --deploy` is quiet).
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not TESTING)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = not TESTING
    CSRF_COOKIE_SECURE = not TESTING
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# E-mail
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "llmops@localhost")

# Celery: eager with no broker configured, so `make run` needs no service.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL or TESTING)
# The queue tasks go to by default; a private one isolates a test worker (tests/notify).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "notify-requeue-stale": {
        "task": "llmops.notify.tasks.requeue_stale",
        "schedule": float(os.environ.get("NOTIFY_REQUEUE_EVERY_SECONDS", "60")),
        "options": {"expires": 55},  # a sweep nobody ran in time is replaced by the next
    },
    "notify-purge": {
        "task": "llmops.notify.tasks.purge",
        "schedule": crontab(hour=3, minute=30),
    },
    "catalog-deprecation-warnings": {
        "task": "llmops.catalog.tasks.warn_deprecations",
        "schedule": crontab(hour=6, minute=0),
    },
    "prompts-model-risk-warnings": {
        "task": "prompts.tasks.warn_model_risks",
        "schedule": crontab(hour=6, minute=15),
    },
    "traces-retention": {
        "task": "llmops.traces.tasks.purge_expired",
        "schedule": crontab(hour=3, minute=30),
    },
    "traces-compact-user-rollups": {
        "task": "llmops.traces.tasks.compact_user_rollups",
        "schedule": float(os.environ.get("TRACES_COMPACT_EVERY_SECONDS", "60")),
        "options": {"expires": 55},
    },
    "traces-compact-user-rollups-all-days": {
        "task": "llmops.traces.tasks.compact_user_rollups",
        "schedule": crontab(hour=4, minute=0),
        "kwargs": {"recent_days": None},
    },
    "reviews-sweep-leases": {
        "task": "reviews.tasks.sweep_leases",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "reviews-notify-overdue": {
        "task": "reviews.tasks.notify_overdue",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "incidents-overdue-action-items": {
        "task": "incidents.tasks.notify_overdue_action_items",
        "schedule": crontab(minute=5),
    },
    # Each audit chain head to the admins' e-mail and audit.* webhooks, kept outside the
    # database for `audit_verify --against`.
    "audit-send-chain-heads": {
        "task": "llmops.audit.tasks.send_chain_heads",
        "schedule": crontab(hour=5, minute=0),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "llmops.tenancy.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["llmops.tenancy.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["llmops.common.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "llmops.common.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "llmops.common.api.ApiSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Writes only, per key and per organization (llmops/tenancy/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["llmops.tenancy.throttling.ApiThrottle"],
}
# API rate limits (README "Limits"): requests per window for each bucket, per API key and
# per organization; `Organization.api_limits` overrides them for one organization. Tests
# raise them a thousandfold (a test of the limits sets API_LIMITS_SCALE=1).
API_LIMITS = {
    "ingest": {"key": "600/min", "org": "1200/min"},
    "alerts": {"key": "120/min", "org": "300/min"},
    "webhook_test": {"key": "5/min", "org": "20/min"},
    "writes": {"key": "300/min", "org": "1000/min"},
}
API_LIMITS_SCALE = float(os.environ.get("API_LIMITS_SCALE", "1000" if TESTING else "1"))
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )
SPECTACULAR_SETTINGS = {
    "TITLE": "llmops API",
    "DESCRIPTION": "Governance for LLM features in production: prompts, evals, models, reviews, incidents.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ModelStatusEnum": "llmops.catalog.models.ModelVersion.Status",
        "ModelTransitionToEnum": ["suspended", "approved", "deprecated", "retired"],
        # Other apps' `status` fields (and the incidents' transition `to`) each get a name.
        "GenerationStatusEnum": "llmops.traces.models.Generation.Status",
        "PromptVersionStatusEnum": "prompts.models.PromptVersion.Status",
        "IncidentStatusEnum": "incidents.models.Status",
        "SeverityEnum": "incidents.models.Severity",
    },
}

# Logging: one JSON line per request and per task in production mode.
LOG_JSON = env_bool("LOG_JSON", not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "llmops.common.logging.JsonFormatter"},
        "plain": {"format": "%(levelname)s %(name)s %(message)s"},
    },
    # Every line goes out through one handler that blanks URL-borne secrets (invitation
    # tokens in Django's "Not Found: <path>", the request log, tracebacks).
    "filters": {"redact": {"()": "llmops.common.logging.RedactFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "plain",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (an unfiltered console when DEBUG, mail_admins) replaced by
        # the root's: django.request's errors are logged once, redacted.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"level": "WARNING"},
        "llmops.request": {"level": "INFO"},
    },
}
if TESTING:
    LOGGING["root"]["level"] = "WARNING"
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LLMOPS = {
    # Reverse proxies in front of the app that append to X-Forwarded-For (audit event IPs).
    "TRUSTED_PROXY_COUNT": int(os.environ.get("TRUSTED_PROXY_COUNT", "0")),
    "API_KEY_CACHE_SECONDS": 300,
    "API_KEY_LAST_USED_SECONDS": 60,
    "NOTIFY_STALE_SECONDS": int(os.environ.get("NOTIFY_STALE_SECONDS", "180")),
    "NOTIFY_MAX_ATTEMPTS": 8,
    # Retry n waits a random time (full jitter) up to NOTIFY_BACKOFF_SECONDS * 2^(n-1),
    # capped below Redis' visibility timeout.
    "NOTIFY_BACKOFF_SECONDS": int(os.environ.get("NOTIFY_BACKOFF_SECONDS", "30")),
    "NOTIFY_BACKOFF_MAX_SECONDS": 1800,
    "NOTIFY_HTTP_TIMEOUT": 10,
    # Webhooks to loopback/private/link-local addresses (refused in production: an org admin
    # must not reach the host's internal network through us).
    "NOTIFY_ALLOW_PRIVATE_WEBHOOKS": env_bool("NOTIFY_ALLOW_PRIVATE_WEBHOOKS", DEBUG or TESTING),
    # Read inbox rows and finished deliveries (with their attempts) are deleted after this.
    "NOTIFY_RETENTION_DAYS": 90,
    # Absolute links in e-mails and webhooks (Slack text): where users reach this site.
    "BASE_URL": os.environ.get("LLMOPS_BASE_URL", "http://127.0.0.1:8000"),
    # A rotated webhook secret keeps signing (beside the new one) this many hours.
    "NOTIFY_SECRET_ROTATION_HOURS": 24,
    # Fernet keys for secrets at rest (llmops.common.crypto): the first encrypts, all
    # decrypt. Unset: a key derived from SECRET_KEY (set them in production, README.md).
    "SECRET_KEYS": env_list("LLMOPS_SECRET_KEYS"),
}
