"""The baked backend's is_usable() for each kind of message a server may send an idle session.

tests/test_neon_backend.py cuts a real session, which always ends in an end of stream; here a
fake server (fake_postgres.py) sends one message and keeps the socket open, so each branch of
is_usable() decides alone. The queries the fake counts are the round trips is_usable() spent.
"""

import select

import psycopg
import pytest
from config.neon_backend.base import DatabaseWrapper

from fake_postgres import FakePostgres, error, notice, parameter_status

SETTINGS = {"ENGINE": "config.neon_backend", "NAME": "test", "OPTIONS": {}}


@pytest.fixture
def idle_session():
    """(fake server, Django connection) with the session idle in autocommit, as between requests."""
    with FakePostgres() as server:
        connection = DatabaseWrapper(SETTINGS, "default")
        connection.connection = psycopg.connect(server.conninfo, autocommit=True)
        try:
            yield server, connection
        finally:
            connection.connection.close()


def usable_after(server, connection, message):
    server.send(message)
    select.select([connection.connection.pgconn.socket], [], [], 5)  # until it has arrived
    return connection.is_usable()


def test_a_parameter_change_keeps_the_connection_without_a_query(idle_session):
    server, connection = idle_session
    assert usable_after(server, connection, parameter_status("application_name", "renamed"))
    assert server.queries == 0
    # The message was read, not left on the socket.
    assert connection.connection.info.parameter_status("application_name") == "renamed"


@pytest.mark.parametrize("severity", ["NOTICE", "WARNING"])
def test_a_notice_while_idle_is_decided_by_one_query(idle_session, severity):
    server, connection = idle_session
    assert usable_after(server, connection, notice(severity)) is True
    assert server.queries == 1


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(error("FATAL", "terminating connection"), id="FATAL"),
        # PgBouncer writes no V field; its errors to an idle client come before it closes.
        pytest.param(error("ERROR", "client_idle_timeout", "08P01", False), id="PgBouncer ERROR"),
    ],
)
def test_an_error_while_idle_drops_the_connection_without_a_query(idle_session, message):
    server, connection = idle_session
    assert usable_after(server, connection, message) is False
    assert server.queries == 0
