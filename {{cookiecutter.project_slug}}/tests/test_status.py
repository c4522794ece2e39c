"""The status pages against the configured database (Django's test database on the direct host)."""

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def debugging(settings):
    settings.DEBUG = True


def server_version():
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def test_home_page_shows_the_live_connection_while_debugging(client, debugging):
    response = client.get("/")
    assert response.status_code == 200
    assert f"PostgreSQL {server_version()} at {connection.settings_dict['HOST']}" in (
        response.content.decode()
    )


def test_health_answers_with_a_database_round_trip(client, debugging):
    body = client.get("/health/").json()
    assert body["status"] == "ok"
    assert body["database"]["server_version"] == server_version()
    assert body["database"]["tls"] is True
    assert body["database"]["round_trip_ms"] >= 0


def test_production_pages_say_whether_it_works_and_nothing_more(client, settings):
    settings.DEBUG = False
    assert client.get("/health/", secure=True).json() == {"status": "ok"}
    page = client.get("/", secure=True).content.decode()
    assert "Connected to the database." in page
    assert connection.settings_dict["HOST"] not in page and server_version() not in page


def test_dbcheck_reports_the_server(capsys):
    call_command("dbcheck")
    out = capsys.readouterr().out
    assert f"PostgreSQL {server_version()}" in out and "TLS on" in out
