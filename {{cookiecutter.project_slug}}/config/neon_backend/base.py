"""Django's PostgreSQL backend, with three changes for Neon (selected in config/neon.py).

1. Liveness without a round trip. With CONN_HEALTH_CHECKS, Django tests a kept connection before
   its first use in each request; its own test is `SELECT 1`, one more round trip per request.
   A connection that Neon cut (a suspend, a pooler restart, pg_terminate_backend) needs no query
   to show it: the server wrote an error and closed, so the idle socket is readable. A healthy
   idle connection receives nothing, so `is_usable()` looks at the socket instead of asking.
2. No `SET TIME ZONE` when the server reports UTC under another of its names (Etc/UTC, Zulu…).
3. Connecting (never a query) is retried for a few seconds while a compute wakes or restarts.
   Once a budget is spent in vain, connects try once each for as long again: a page that touches
   the database several times (the admin, a debug page) must not wait the budget at every touch.

With Django's pool (OPTIONS["pool"], DJANGO_DB_POOL), each connection taken from the pool gets
the same test, again without a round trip (config/neon.py leaves CONN_HEALTH_CHECKS off for the
pool: with it, Django would have the pool send an empty query instead).
"""

import atexit
import random
import selectors
import time
import weakref

import psycopg
from django.db.backends.postgresql import base
from psycopg.pq import ConnStatus, TransactionStatus

# Names of the one UTC zone in the time zone database (links to it); PostgreSQL reports the
# zone by the name it was configured with.
UTC_NAMES = {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}

# What a compute or pooler that is starting, stopping or waking answers for a moment. Anything
# else (a wrong password, an unknown database, a bad certificate) fails at once.
TRANSIENT_CONNECT_ERRORS = (
    "Connection refused",
    "Connection reset",
    "server closed the connection unexpectedly",
    "EOF detected",
    "timeout expired",
    "Couldn't connect to compute node",  # Neon's proxy, while the compute restarts
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is not yet accepting connections",
)
FIRST_PAUSE_SECONDS = 0.05
LONGEST_PAUSE_SECONDS = 1.0
# Severities of an ErrorResponse; a server sends one to an idle session only to say goodbye.
ERROR_SEVERITIES = {"ERROR", "FATAL", "PANIC"}
# Per database alias, until when this process connects without retrying (see 3. above).
_retry_paused_until = {}
_pools_closed_at_exit = weakref.WeakSet()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        params.pop("connect_retry_seconds", None)  # ours, not libpq's
        return params

    def get_new_connection(self, conn_params):
        budget = float(self.settings_dict["OPTIONS"].get("connect_retry_seconds", 0))
        if time.monotonic() < _retry_paused_until.get(self.alias, 0):
            budget = 0
        deadline = time.monotonic() + budget
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                connection = super().get_new_connection(conn_params)
            except psycopg.OperationalError as error:
                if not transient(error):
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if budget:
                        _retry_paused_until[self.alias] = time.monotonic() + budget
                    raise
            else:
                _retry_paused_until.pop(self.alias, None)
                if self.pool is None or pooled_connection_works(connection):
                    return connection
                # The pool hands out what it holds, also connections a suspend cut. This one
                # goes back closed (the pool drops it and opens another), and the next is taken
                # at once: psycopg's own check would wait 1 s, 2 s, 4 s… between dead ones.
                connection.close()
                self.pool.putconn(connection)
                continue
            # Jitter keeps the workers of a restarted app from knocking all at once.
            time.sleep(min(pause * random.uniform(0.5, 1.0), remaining))
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)

    def _configure_timezone(self, connection):
        # Django compares names and would send SET TIME ZONE 'UTC' to a server on Etc/UTC: one
        # round trip on every new connection that changes nothing. (A private method of Django's
        # backend, the same in 5.2 and 6.1; the tests count that round trip on both.)
        if self.timezone_name == "UTC" and (
            connection.info.parameter_status("TimeZone") in UTC_NAMES
        ):
            return False
        return super()._configure_timezone(connection)

    def is_usable(self):
        usable = idle_connection_usable(self.connection)
        # None: a query decides, Django's `SELECT 1`.
        return super().is_usable() if usable is None else usable

    @property
    def pool(self):
        pool = super().pool
        if pool is not None and pool not in _pools_closed_at_exit:
            # Left to the garbage collector, the pool stops its threads only while the
            # interpreter shuts down, when they can no longer run: a worker then hangs for 5 s
            # per thread on its way out.
            _pools_closed_at_exit.add(pool)
            atexit.register(pool.close)
        return pool


def idle_connection_usable(connection):
    """Whether a kept connection works, judged without a query if at all possible.

    True or False, or None when only a query can tell.
    """
    if connection is None:
        return False
    pgconn = connection.pgconn
    if pgconn.status != ConnStatus.OK:
        return False
    if pgconn.transaction_status != TransactionStatus.IDLE:
        # Django asks between requests, when a connection is idle in autocommit. Inside a
        # transaction, bytes from the server may be an answer still being read: only a query
        # can tell.
        return None
    try:
        if not _readable(pgconn.socket):
            return True
        severities = _read_while_idle(connection)
    except psycopg.OperationalError:  # end of stream or reset: the server is gone
        return False
    if pgconn.status != ConnStatus.OK or severities & ERROR_SEVERITIES:
        return False  # a FATAL error ("terminating connection…") announces the close
    if severities:
        # A notice while idle is rare and may come just before a close (a crashed server warns
        # every session); a query decides.
        return None
    return True  # only parameter changes or NOTIFY messages: the session is fine


def pooled_connection_works(connection):
    """Whether a connection taken from Django's pool works; a query only if nothing else tells."""
    usable = idle_connection_usable(connection)
    if usable is None:
        try:
            connection.execute("")
        except psycopg.Error:
            return False
    return usable is not False


def _read_while_idle(connection):
    """Read what the server sent; the severities of its notices and errors."""
    severities = set()

    def note(diagnostic):
        # PgBouncer sends no untranslated severity (V), only S, in English.
        severities.add(diagnostic.severity_nonlocalized or diagnostic.severity)

    pgconn = connection.pgconn
    connection.add_notice_handler(note)
    try:
        # Reading until the socket is quiet also reaches an end of stream that arrived just
        # after the server's last message; consume_input() raises on it.
        while _readable(pgconn.socket):
            pgconn.consume_input()
        # libpq parses a message only when asked: errors and notices go to `note`, new
        # parameter values are stored, NOTIFY messages wait for psycopg.
        pgconn.is_busy()
    finally:
        connection.remove_notice_handler(note)
    return severities


def transient(error):
    """Whether every address tried failed for a reason that passes with a moment's wait.

    psycopg lists each address's failure when a host has several (localhost: ::1 and
    127.0.0.1); one refused address must not make a wrong password on another one retried.
    """
    text = str(error)
    _, listed, failures = text.partition("All failures were:")
    attempts = failures.split("\n- ")[1:] if listed else [text]
    return all(any(part in attempt for part in TRANSIENT_CONNECT_ERRORS) for attempt in attempts)


# One poll() call per question; the default (epoll) costs four system calls each time.
_ONE_SHOT_SELECTOR = getattr(selectors, "PollSelector", selectors.SelectSelector)


def _readable(socket):
    """Whether the socket has bytes or an end of stream to read, without waiting."""
    with _ONE_SHOT_SELECTOR() as selector:
        selector.register(socket, selectors.EVENT_READ)
        return bool(selector.select(timeout=0))
