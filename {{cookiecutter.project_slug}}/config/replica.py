"""Reads on Neon's read replica (DATABASE_REPLICA_URL), writes on the primary.

A read replica is another compute on the same storage, read-only, a moment behind the primary.
settings.py installs the router and the middleware below when config/neon.py made a "replica"
alias. The router sends a read to the primary instead when the replica would answer wrongly or
not at all:

- after a write in the same request (or, outside requests, the same thread), through the ORM or
  a raw cursor: the replica may not have the write yet;
- for a few seconds after a request that wrote, in the same browser (a cookie): the page a form
  redirects to, or the first page after logging in, shows what was just saved;
- sessions, always: a login or logout writes one moments before the next request reads it;
- inside a transaction on the primary: its reads belong with its writes (and a test's data,
  never committed, is visible there only);
- while the replica is unreachable: the request is served from the primary, with a warning;
- while its pool (Django's, when on) has every connection lent: that read only, no warning.

Migrations run on the primary only; `migrate --database replica` with work to do is refused.
"""

import logging
import time
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction
from django.core import mail
from django.core.management import CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.signals import connection_created
from django.db.models.signals import pre_migrate
from django.dispatch import receiver
from django.http import FileResponse
from django.utils.decorators import sync_and_async_middleware

from config.neon import REPLICA, describe, masked

logger = logging.getLogger(__name__)

# After a failed connection, the replica is left alone for this long before it is tried again.
REPLICA_PAUSE_SECONDS = 5
# After a request that wrote, the browser's requests read from the primary for this long: the
# replica has replayed the write by then (it usually takes well under a second).
READ_FROM_PRIMARY_COOKIE = "read_from_primary"
READ_FROM_PRIMARY_SECONDS = 5
# What SQL starts with that writes nothing; anything else on the primary counts as a write.
READING_SQL = ("SELECT", "SHOW", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
_READING_PREFIX = max(map(len, READING_SQL))  # note_writes looks no further into a statement


class Writes:
    """Whether this request has written; shared by the threads that serve one request."""

    wrote = False
    wrote_recently = False  # the browser's earlier request did (READ_FROM_PRIMARY_COOKIE)


# The middleware gives each request its own Writes. A ContextVar, not a thread local: under ASGI a
# request's sync parts run in other threads, which get a copy of the context holding the same
# Writes object.
_writes = ContextVar("writes")


def read_from_primary():
    """Sends the rest of this request's reads to the primary, and its browser's for
    READ_FROM_PRIMARY_SECONDS (outside requests: the rest of this thread's or task's reads).

    The router calls it for every write it sees; call it for one it cannot see, such as a raw
    SELECT of a function that writes, or in a worker that must read what it just wrote.
    """
    current_writes().wrote = True


def current_writes():
    try:
        return _writes.get()
    except LookupError:  # outside a request: the context's own (a thread's, in a plain thread)
        writes = Writes()
        _writes.set(writes)
        return writes


@sync_and_async_middleware
def read_your_writes(get_response):
    """A fresh Writes for each request, and the cookie that pins the browser's next requests."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            token = _writes.set(writes_of(request))
            try:
                return remember_writes(request, await get_response(request))
            finally:
                _writes.reset(token)

    else:

        def middleware(request):
            token = _writes.set(writes_of(request))
            try:
                return remember_writes(request, get_response(request))
            finally:
                _writes.reset(token)

    return middleware


def writes_of(request):
    writes = Writes()
    writes.wrote_recently = READ_FROM_PRIMARY_COOKIE in request.COOKIES
    return writes


def remember_writes(request, response):
    writes = _writes.get()
    if response.streaming and not isinstance(response, FileResponse):
        # Its content is read after this middleware returned: with this request's Writes still.
        content = response.streaming_content
        streamed = streamed_async if response.is_async else streamed_sync
        response.streaming_content = streamed(writes, content)
    if writes.wrote:
        response.set_cookie(
            READ_FROM_PRIMARY_COOKIE,
            "1",
            max_age=READ_FROM_PRIMARY_SECONDS,
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
    return response


_END = object()


def streamed_sync(writes, content):
    """A streamed response's content, read with its request's Writes (also streamed_async)."""
    content = iter(content)
    while True:
        token = _writes.set(writes)
        try:
            part = next(content, _END)
        finally:
            _writes.reset(token)
        if part is _END:
            return
        yield part


async def streamed_async(writes, content):
    content = aiter(content)
    while True:
        token = _writes.set(writes)
        try:
            part = await anext(content, _END)
        finally:
            _writes.reset(token)
        if part is _END:
            return
        yield part


def note_writes(execute, sql, params, many, context):
    """On the primary's connections: SQL that may write pins the request's reads there too."""
    if not str(sql).lstrip()[:_READING_PREFIX].upper().startswith(READING_SQL):
        read_from_primary()
    return execute(sql, params, many, context)


@receiver(connection_created)
def watch_writes(sender, connection, **kwargs):
    # Raw cursors too, not only the ORM's writes (db_for_write). First in the list: Django's
    # execute_wrapper() removes the last one when its block ends.
    if connection.alias == DEFAULT_DB_ALIAS and note_writes not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, note_writes)


@receiver(pre_migrate)
def refuse_to_migrate_the_replica(sender, using, plan, **kwargs):
    if using == REPLICA and plan:
        raise CommandError("The read replica is read-only: migrate without --database replica")


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return REPLICA if not must_read_primary(model) and replica_answers() else DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        read_from_primary()
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data on both

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


def must_read_primary(model):
    writes = current_writes()
    return (
        writes.wrote
        or writes.wrote_recently
        or model._meta.app_label == "sessions"
        or connections[DEFAULT_DB_ALIAS].in_atomic_block
        or under_test()
    )


def under_test():
    """Whether Django's test environment is set up (it gives django.core.mail an outbox).

    Tests read from default: the replica alias, a test mirror, reaches the test database only
    through the replica's own host, a moment behind; and a test that does not list it in its
    databases (TransactionTestCase, django_db(transaction=True), a live server) may not use it.
    """
    return hasattr(mail, "outbox")


class QuietReplicaPool(logging.Filter):
    """Holds back the warning psycopg's pool logs at each attempt to reach the replica: while it
    is away, replica_answers() warns once per pause instead, with the last attempt's reason."""

    last_error = ""

    def filter(self, record):
        if not (isinstance(record.args, tuple) and record.args[:1] == (REPLICA,)):
            return True
        if record.levelno >= logging.WARNING:
            self.last_error = record.getMessage()
        return False


quiet_replica_pool = QuietReplicaPool()
logging.getLogger("psycopg.pool").addFilter(quiet_replica_pool)


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
        if every_pooled_connection_lent(replica):
            return False  # busy, not away: this read goes to the primary, the next tries again
        _paused_until = time.monotonic() + REPLICA_PAUSE_SECONDS
        # With Django's pool, the error is only the pool's timeout; the reason is in its log.
        reason, quiet_replica_pool.last_error = quiet_replica_pool.last_error, ""
        logger.warning(
            "The read replica is unreachable, reading from the primary for %s s: %s%s",
            REPLICA_PAUSE_SECONDS,
            describe(error),
            f" ({masked(reason)})" if reason else "",
        )
        return False
    return True


def every_pooled_connection_lent(database):
    """Whether the database's pool (Django's, when on) has all the connections it may open out
    on loan: waiting for one timed out because the replica is busy, not because it is away."""
    pool = database.pool if database.settings_dict["OPTIONS"].get("pool") else None
    if pool is None:
        return False
    stats = pool.get_stats()
    return stats["pool_size"] >= pool.max_size and stats["pool_available"] == 0
