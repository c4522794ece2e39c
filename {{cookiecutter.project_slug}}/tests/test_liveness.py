"""/health/live/, for frequent probes: it answers without opening a database connection.

No django_db mark: pytest-django refuses any database access here, so a query would fail the
test even before the checks below.
"""

from django.db import connections
from django.db.backends.signals import connection_created


def test_liveness_never_touches_the_database(client, settings):
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    for connection in connections.all():
        connection.close()
    opened = []

    def count(connection, **kwargs):
        opened.append(connection.alias)

    connection_created.connect(count)
    try:
        # Plain HTTP, as a platform's probe sends it: no redirect to HTTPS.
        responses = [client.get("/health/live/") for _ in range(20)]
    finally:
        connection_created.disconnect(count)
    assert {(r.status_code, r.content) for r in responses} == {(200, b'{"status": "ok"}')}
    assert opened == []
    assert all(connection.connection is None for connection in connections.all())


def test_other_pages_still_redirect_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/admin/login/")
    assert response.status_code == 301 and response.url.startswith("https://")
