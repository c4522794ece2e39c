"""Reads on Neon's read replica (DATABASE_REPLICA_URL), writes on the primary.

A read replica is another compute on the same storage, read-only, a moment behind the primary.
settings.py installs the router and the middleware below when config/neon.py made a "replica"
alias. The router sends a read to the primary instead when the replica would answer wrongly or
not at all:

- after a write in the same request (or, outside requests, the same thread): the replica may
  not have the write yet, and a user who just saved a form expects to see it;
- inside a transaction on the primary: its reads belong with its writes (and a test's data,
  never committed, is visible there only);
- while the replica is unreachable: the request is served from the primary, with a warning.

Migrations run on the primary only.
"""

import logging
import time
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction
from django.core import mail
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.utils.decorators import sync_and_async_middleware

from config.neon import REPLICA, describe

logger = logging.getLogger(__name__)

# After a failed connection, the replica is left alone for this long before it is tried again.
REPLICA_PAUSE_SECONDS = 5


class Writes:
    """Whether this request has written; shared by the threads that serve one request."""

    wrote = False


# The middleware gives each request its own Writes. A ContextVar, not a thread local: under ASGI a
# request's sync parts run in other threads, which get a copy of the context holding the same
# Writes object.
_writes = ContextVar("writes")


def current_writes():
    try:
        return _writes.get()
    except LookupError:  # outside a request: the thread's own, for as long as it lives
        writes = Writes()
        _writes.set(writes)
        return writes


@sync_and_async_middleware
def read_your_writes(get_response):
    """A fresh Writes for each request, so that one request's write does not pin the next."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            token = _writes.set(Writes())
            try:
                return await get_response(request)
            finally:
                _writes.reset(token)

    else:

        def middleware(request):
            token = _writes.set(Writes())
            try:
                return get_response(request)
            finally:
                _writes.reset(token)

    return middleware


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if current_writes().wrote or connections[DEFAULT_DB_ALIAS].in_atomic_block or under_test():
            return DEFAULT_DB_ALIAS
        return REPLICA if replica_answers() else DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        current_writes().wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data on both

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


def under_test():
    """Whether Django's test environment is set up (it gives django.core.mail an outbox).

    Tests read from default: the replica alias, a test mirror, reaches the test database only
    through the replica's own host, a moment behind; and a test that does not list it in its
    databases (TransactionTestCase, django_db(transaction=True), a live server) may not use it.
    """
    return hasattr(mail, "outbox")


_paused_until = 0.0  # time.monotonic() before which the replica is not tried


def replica_answers():
    """Whether the replica has a usable connection (opening one if needed)."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return False
    replica = connections[REPLICA]
    try:
        # As Django does before a request's first query: a connection a suspend cut is dropped.
        replica.close_if_health_check_failed()
        replica.ensure_connection()
    except DatabaseError as error:
        _paused_until = time.monotonic() + REPLICA_PAUSE_SECONDS
        logger.warning(
            "The read replica is unreachable, reading from the primary for %s s: %s",
            REPLICA_PAUSE_SECONDS,
            describe(error),
        )
        return False
    return True
