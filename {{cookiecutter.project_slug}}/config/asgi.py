"""ASGI entry point. Requests use Neon's pooled connection.

Django advises against persistent connections under ASGI: each request may run in its own
thread, so kept connections pile up instead of being reused. Hence DJANGO_CONN_MAX_AGE is 0 here
whatever the environment says (Neon's pooler keeps the server connections warm instead).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_USE_POOLER", "true")
os.environ["DJANGO_CONN_MAX_AGE"] = "0"

application = get_asgi_application()
