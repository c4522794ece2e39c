"""The status pages against the configured database (Django's test database on the direct host)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_home_page_shows_the_live_connection(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Connected to Neon." in response.content
    assert connection.pg_version // 10000 >= 14


def test_health_answers_with_a_database_round_trip(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["tls"] is True
    assert body["database"]["round_trip_ms"] >= 0


def test_dbcheck_reports_the_server(capsys):
    from django.core.management import call_command

    call_command("dbcheck")
    assert "TLS on" in capsys.readouterr().out
