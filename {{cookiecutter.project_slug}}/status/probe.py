"""One round trip to the database, for people (home page, dbcheck) and machines (/health/)."""

import time
from dataclasses import asdict, dataclass

from django.db import connections, transaction


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


def probe(alias="default", timeout_seconds=5):
    """Connect if needed and run one query, giving up after `timeout_seconds` on the server."""
    connection = connections[alias]
    started = time.perf_counter()
    connection.ensure_connection()
    connected = time.perf_counter()
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        # A wedged compute must not hang the caller; SET LOCAL is safe behind the pooler.
        cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_seconds * 1000)}")
        queried = time.perf_counter()
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
        answered = time.perf_counter()
    pgconn = connection.connection.pgconn
    conninfo = {option.keyword: option.val for option in pgconn.info}
    return Probe(
        host=connection.settings_dict["HOST"],
        # config/neon.py turns server-side cursors off exactly when a pooler is in the way.
        pooled=connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"],
        server_version=server_version,
        tls=bool(pgconn.ssl_in_use),
        channel_binding=(conninfo.get(b"channel_binding") or b"prefer").decode(),
        connect_ms=round((connected - started) * 1000, 1),
        round_trip_ms=round((answered - queried) * 1000, 1),
    )
