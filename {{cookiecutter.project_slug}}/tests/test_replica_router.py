"""The replica router's choices that need no database."""

import contextvars

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from config import replica


def route_a_read():
    # A request of its own: no write of an earlier test pins this read to default.
    request = contextvars.copy_context()
    request.run(replica._writes.set, replica.Writes())
    return request.run(replica.ReplicaRouter().db_for_read, get_user_model())


def test_tests_read_from_default(monkeypatch):
    # Outside a test's transaction (django_db(transaction=True), a live server's thread) the
    # replica alias is not allowed, and reaches the test database only a moment behind.
    monkeypatch.setattr(replica, "replica_answers", lambda: pytest.fail("asked the replica"))
    assert route_a_read() == "default"


def test_reads_go_to_the_replica_outside_tests(monkeypatch):
    monkeypatch.delattr(mail, "outbox")
    monkeypatch.setattr(replica, "replica_answers", lambda: True)
    assert route_a_read() == "replica"
