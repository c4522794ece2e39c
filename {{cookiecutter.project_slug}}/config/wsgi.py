"""WSGI entry point: `gunicorn config.wsgi`. Requests use Neon's pooled connection."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_USE_POOLER", "true")

application = get_wsgi_application()
