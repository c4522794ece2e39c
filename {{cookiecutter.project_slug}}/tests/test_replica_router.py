"""The replica router's choices that need no database."""

import asyncio
import contextvars

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.http import StreamingHttpResponse
from django.test import RequestFactory

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


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_streamed_response_reads_with_its_requests_writes(monkeypatch, is_async):
    # Its content is read after the middleware returned (an export that first saved something).
    monkeypatch.delattr(mail, "outbox")
    monkeypatch.setattr(replica, "replica_answers", lambda: True)
    router, user = replica.ReplicaRouter(), get_user_model()

    async def async_parts():
        yield router.db_for_read(user)

    def view(request):
        router.db_for_write(user)
        parts = async_parts() if is_async else (router.db_for_read(user) for _ in "x")
        return StreamingHttpResponse(parts)

    async def read_async(content):
        return [part async for part in content]

    thread = contextvars.copy_context()  # this thread, which has not written outside requests
    thread.run(replica._writes.set, replica.Writes())
    response = thread.run(replica.read_your_writes(view), RequestFactory().get("/"))
    content = response.streaming_content
    parts = thread.run(asyncio.run, read_async(content)) if is_async else thread.run(list, content)
    assert parts == [b"default"]


def test_reads_after_read_from_primary_go_to_the_primary(monkeypatch):
    monkeypatch.delattr(mail, "outbox")
    monkeypatch.setattr(replica, "replica_answers", lambda: True)
    router, user = replica.ReplicaRouter(), get_user_model()
    request = contextvars.copy_context()
    request.run(replica._writes.set, replica.Writes())
    assert request.run(router.db_for_read, user) == "replica"
    request.run(replica.read_from_primary)
    assert request.run(router.db_for_read, user) == "default"
