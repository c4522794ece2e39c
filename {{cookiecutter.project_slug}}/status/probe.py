"""One query to the database, for people (home page, dbcheck) and machines (/health/).

Nothing here may keep a caller waiting past PROBE_BUDGET_SECONDS, whatever the database does: a
load balancer waits on /health/. A statement timeout cannot promise that, because it starts only
once the server runs the query, and a query can wait first in the pooler's queue, or on a frozen
pooler or a compute that never answers. So the client enforces the deadline itself:

- opening a connection gets libpq's connect_timeout, lowered to the time left;
- everything after that (Django's session setup, the query) runs under a watchdog thread that,
  when time is up, shuts the connection's socket down: libpq's wait then ends at once with an
  error, and the probe closes the connection, so the next request starts on a fresh one.

The probe honours CONN_HEALTH_CHECKS like any first query of a request, then sends `SELECT 1` in
autocommit; the server version and TLS details come from what the server said while connecting.
With the project's backend, whose liveness check sends nothing, a warm probe is one round trip.
"""

import contextlib
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, OperationalError, connections

from config.neon_backend.base import pooled_connection_works

# What can go wrong on the way to the database: unset, unreachable, suspended, timed out.
DATABASE_PROBLEMS = (DatabaseError, ImproperlyConfigured)
# How long /health/, the home page and dbcheck may take, at most. Give load balancers' probes a
# timeout above this.
PROBE_BUDGET_SECONDS = 3
# libpq counts connect_timeout in whole seconds and takes anything below 2 as 2.
SHORTEST_CONNECT_TIMEOUT = 2
# Once time is up, how often the watchdog looks for a connection that opened late.
WATCHDOG_INTERVAL_SECONDS = 0.05


@dataclass(frozen=True)
class Probe:
    host: str
    pooled: bool
    server_version: str
    tls: bool
    channel_binding: str
    connect_ms: float
    round_trip_ms: float

    def as_dict(self):
        return asdict(self)


def probe(alias="default", budget_seconds=PROBE_BUDGET_SECONDS):
    """Run one query, connecting first if needed; raise a DatabaseError after `budget_seconds`."""
    connection = connections[alias]
    with Deadline(connection, budget_seconds) as deadline:
        try:
            if connection.connection is not None:
                health_check(connection, deadline)
            connect_ms = 0.0
            if connection.connection is None:
                if deadline.remaining() < SHORTEST_CONNECT_TIMEOUT:
                    deadline.expire()  # a connect started now could overrun the budget
                started = time.perf_counter()
                deadline.run(connect, connection, deadline.remaining())
                connect_ms = round((time.perf_counter() - started) * 1000, 1)
            round_trip_ms = deadline.run(select_one, connection)
            deadline.finish()
            return describe(connection, connect_ms, round_trip_ms)
        except DatabaseError:
            deadline.close_connection()
            raise


def health_check(connection, deadline):
    """Django's CONN_HEALTH_CHECKS for a kept connection, as its first query in a request does.

    Done here rather than by Django so that closing a dead connection happens under the
    deadline's lock.
    """
    if connection.health_check_enabled and not connection.health_check_done:
        if not deadline.run(connection.is_usable):
            deadline.close_connection()
        connection.health_check_done = True


def connect(connection, seconds):
    """Open the connection within `seconds`: libpq's connect_timeout, and any retry, fit in."""
    if getattr(connection, "pool", None) is not None:  # not every backend has a pool
        take_from_pool(connection, seconds)
    shared = connection.settings_dict  # the same dict for every thread: never change it
    options = shared.get("OPTIONS", {})
    timeout = max(
        min(int(options.get("connect_timeout") or seconds), int(seconds)), SHORTEST_CONNECT_TIMEOUT
    )
    bounded = {**options, "connect_timeout": timeout}
    if "connect_retry_seconds" in options:
        # The project's backend retries a refused connect; its last attempt may start at the end
        # of the retry time and then take a whole connect_timeout.
        bounded["connect_retry_seconds"] = max(
            0.0, min(float(options["connect_retry_seconds"]), seconds - timeout)
        )
    connection.settings_dict = {**shared, "OPTIONS": bounded}
    try:
        connection.ensure_connection()
    finally:
        connection.settings_dict = shared


def take_from_pool(connection, seconds):
    """Wait up to `seconds` until Django's pool holds a working connection, and leave it there.

    Django would wait the pool's own timeout (10 s) for one; connecting then finds it ready.
    """
    pool = connection.pool
    give_up = time.monotonic() + seconds
    pool.open()
    with connection.wrap_database_errors:
        while True:
            pooled = pool.getconn(timeout=max(give_up - time.monotonic(), 0.001))
            works = pooled_connection_works(pooled)
            if not works:
                pooled.close()  # the pool drops it and opens another
            pool.putconn(pooled)
            if works:
                return


def select_one(connection):
    """The probe's one round trip; returns it in milliseconds."""
    with connection.wrap_database_errors:
        started = time.perf_counter()
        connection.connection.execute("SELECT 1").fetchone()
    return round((time.perf_counter() - started) * 1000, 1)


def describe(connection, connect_ms, round_trip_ms):
    info = connection.connection.info
    pgconn = connection.connection.pgconn
    conninfo = {option.keyword: option.val for option in pgconn.info}
    return Probe(
        host=connection.settings_dict["HOST"],
        # config/neon.py turns server-side cursors off exactly when a pooler is in the way.
        pooled=connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"],
        server_version=info.parameter_status("server_version") or "",
        tls=bool(pgconn.ssl_in_use),
        channel_binding=(conninfo.get(b"channel_binding") or b"prefer").decode(),
        connect_ms=connect_ms,
        round_trip_ms=round_trip_ms,
    )


class Deadline:
    """A watchdog thread that, once time is up, cuts the socket of the connection being probed.

    Every close of the connection during the probe goes through close_connection(), under the
    same lock as the cut, so the watchdog never touches a socket number that has been reused.
    """

    def __init__(self, connection, seconds):
        self.connection = connection
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def __enter__(self):
        threading.Thread(target=self._watch, name="probe-deadline", daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self._finished.set()

    def finish(self):
        """Stop the watchdog; if it cut the socket after the answer came, the probe fails all
        the same, so that the rest of the request does not run on a cut connection."""
        self.__exit__()
        if self.expired:
            self.expire()

    def remaining(self):
        return max(0.0, self.ends - time.monotonic())

    def run(self, step, *args):
        """step(*args); a step the watchdog cut short becomes one plain OperationalError."""
        if not self.remaining():
            self.expire()
        try:
            return step(*args)
        except OperationalError:
            if self.expired:
                self.expire()
            raise

    def close_connection(self):
        with self._lock:
            self.connection.close()

    def expire(self):
        self.expired = True
        raise OperationalError(f"no answer from the database within {self.seconds} s")

    def _watch(self):
        if self._finished.wait(self.remaining()):
            return
        # Cut the connection the probe holds, then any it manages to open late, until it gives up.
        while True:
            with self._lock:
                if self._finished.is_set():
                    return
                self.expired = True
                cut(self.connection.connection)
            if self._finished.wait(WATCHDOG_INTERVAL_SECONDS):
                return


def cut(raw_connection):
    """Shut down a psycopg connection's socket from another thread; libpq then sees it closed."""
    if raw_connection is None:
        return
    pgconn = raw_connection.pgconn
    try:
        number = pgconn.socket
        duplicate = socket.socket(fileno=os.dup(number))
    except (psycopg.Error, OSError):  # closed or lost already: nothing to cut
        return
    with duplicate, contextlib.suppress(psycopg.Error, OSError):
        # libpq never takes a socket number back once it let it go, so still holding the same
        # number now means the duplicate is libpq's socket, not a stranger's that reused it.
        if pgconn.socket == number:
            duplicate.shutdown(socket.SHUT_RDWR)
