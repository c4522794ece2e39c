"""ASGI entry point: `uvicorn config.asgi:application`. Requests use Neon's pooled connection.

Under ASGI each request runs its synchronous parts (the ORM, sync views) in a thread of its own,
so a connection kept per thread (CONN_MAX_AGE) would be opened anew for every request and left
behind. Django's own advice for ASGI is its connection pool: connections belong to the pool, and
each request borrows one. So the pool is on here unless DJANGO_DB_POOL says otherwise, and
DJANGO_CONN_MAX_AGE is 0 whatever the environment says (a borrowed connection goes back to the
pool at the end of the request).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_USE_POOLER", "true")
os.environ.setdefault("DJANGO_DB_POOL", "true")
os.environ["DJANGO_CONN_MAX_AGE"] = "0"

application = get_asgi_application()
