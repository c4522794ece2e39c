"""Settings for {{ cookiecutter.project_name | docstring_text }}.

Every value that differs between machines comes from the environment; `.env` fills in what the
environment leaves unset (see .env.example for the full list). The database wiring for Neon lives
in config/neon.py.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from config import neon

BASE_DIR = Path(__file__).resolve().parent.parent

# Literally: a password may contain ${…}, which python-dotenv would otherwise expand.
load_dotenv(BASE_DIR / ".env", override=False, interpolate=False)


def env_bool(name, default=False):
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes", "on")


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set: add it to .env (see .env.example)")

DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS and env_bool("DJANGO_USE_POOLER"):
    # Serving without hosts would answer every request 400, with a traceback in the log.
    # (DJANGO_USE_POOLER marks the processes that serve requests; see DATABASES below.)
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is off and DJANGO_ALLOWED_HOSTS is empty: set it to your site's host names "
        "(to try production locally: DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1)"
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",
    "status",
]

MIDDLEWARE = [
    # Answers /health/… before the Host header is checked: load balancers probe by IP address.
    "status.middleware.HealthProbesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves collectstatic's files from gunicorn itself, compressed and cached.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# Requests go through Neon's pooler; wsgi.py, asgi.py and runserver set DJANGO_USE_POOLER.
# Everything else (migrate, tests, shell) gets a real session on the direct host.
DATABASES = neon.databases(
    os.environ,
    application_name="{{ cookiecutter.project_slug }}",
    use_pooler=env_bool("DJANGO_USE_POOLER"),
)
if neon.REPLICA in DATABASES:
    # Reads go to Neon's read replica, except where they must see a write (config/replica.py).
    DATABASE_ROUTERS = ["config.replica.ReplicaRouter"]
    MIDDLEWARE.insert(0, "config.replica.read_your_writes")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# HTTPS everywhere outside local development. The platform's proxy terminates TLS and says so
# in X-Forwarded-Proto; load balancers probe /health/… over plain HTTP, which
# status.middleware answers before any redirect. To try production locally over plain HTTP, set
# DJANGO_SECURE_SSL_REDIRECT=false.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0" if DEBUG else "60"))
# Both bind more than this site (every subdomain; browsers' built-in lists), so they are yours
# to switch on; check --deploy's reminders about them are silenced until then.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD")
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]

# Debug pages and error e-mails hide anything that shows the database password.
DEFAULT_EXCEPTION_REPORTER = "config.error_reports.MaskingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.MaskingReporterFilter"

# One line per event, with time, level and logger, to stderr, where the platform collects it.
# Django's own loggers (requests, runserver) hand their lines to this one handler instead of
# printing them a second time in their own formats.
LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"},
    },
    # Records propagated from Django's loggers (which keep levels of their own) reach this handler
    # without the root's level being asked again: the handler applies DJANGO_LOG_LEVEL too.
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "level": LOG_LEVEL,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
    },
}
