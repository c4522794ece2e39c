"""Decisions of the backend's connect retry and of the probe's deadline, without a database."""

import time

import psycopg
import pytest
from django.db import OperationalError

from config.neon_backend.base import transient
from status import probe as probe_module

WRONG_PASSWORD = (
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    'FATAL:  password authentication failed for user "alex"'
)
REFUSED = (
    'connection failed: connection to server at "::1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)


def several_addresses(*failures):
    """psycopg's message when a host name has several addresses and every one failed."""
    listed = "".join(f"\n- host: 'localhost', port: '5432': {failure}" for failure in failures)
    return f"{failures[-1]}\nMultiple connection attempts failed. All failures were:{listed}"


@pytest.mark.parametrize(
    ("message", "retried"),
    [
        (REFUSED, True),
        (WRONG_PASSWORD, False),
        (several_addresses(REFUSED, REFUSED), True),
        # localhost is ::1 and 127.0.0.1, Postgres listens on one: the password is still wrong.
        (several_addresses(WRONG_PASSWORD, REFUSED), False),
        (several_addresses(REFUSED, WRONG_PASSWORD), False),
    ],
)
def test_only_a_passing_failure_is_retried(message, retried):
    assert transient(psycopg.OperationalError(message)) is retried


class LostSocket:
    @property
    def socket(self):
        raise psycopg.OperationalError("the connection is lost")


class Kept:
    """A Django connection whose psycopg connection is open; its socket is not ours to cut."""

    health_check_enabled = False

    def __init__(self):
        self.connection = type("Raw", (), {"pgconn": LostSocket()})()
        self.closed = False

    def close(self):
        self.closed = True
        self.connection = None


def test_an_answer_the_watchdog_overtook_fails_the_probe(monkeypatch):
    kept = Kept()
    monkeypatch.setattr(probe_module, "connections", {"default": kept})

    def answered_then_late(connection):
        time.sleep(0.3)  # the answer came, but the watchdog cut the socket meanwhile
        return 1.0

    monkeypatch.setattr(probe_module, "select_one", answered_then_late)
    with pytest.raises(OperationalError, match="within 0.1 s"):
        probe_module.probe(budget_seconds=0.1)
    assert kept.closed  # the next query opens a fresh connection
