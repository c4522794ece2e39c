import ctypes
import statistics
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from config import neon
from config.neon_checks import version_text
from status.probe import DATABASE_PROBLEMS, probe

# Round trips timed after the probe's own, for a steadier figure than one sample.
EXTRA_ROUND_TRIPS = 5
CHANNEL_BINDING = {
    "require": "required (the password exchange is tied to this TLS session)",
    "prefer": "not required (libpq uses it only if the server offers it)",
    "disable": "disabled",
}


class Command(BaseCommand):
    help = (
        "Everything about the database connection in one place: driver, libpq, host kind, TLS, "
        "channel binding, server version, connect and round-trip times."
    )
    # Its job includes looking at the pooled connection (DJANGO_USE_POOLER=true), which the
    # neon checks refuse for every other command.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="the alias to look at")
        parser.add_argument("--timeout", type=int, default=10, help="seconds to wait in all")

    def handle(self, *args, database, timeout, **options):
        driver = f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__})"
        libpq = psycopg.pq.version()
        self.line("driver", f"{driver}, libpq {version_text(libpq)} ({libpq})")
        try:
            result = probe(database, budget_seconds=timeout)
            samples = [probe(database, timeout).round_trip_ms for _ in range(EXTRA_ROUND_TRIPS)]
        except DATABASE_PROBLEMS as error:
            raise CommandError(neon.describe(error)) from None
        tls = tls_session(connections[database].connection.pgconn) if result.tls else None
        self.line("host", f"{result.host} ({neon.host_kind(result.host)})")
        self.line("route", "through a pooler" if result.pooled else "straight to Postgres")
        self.line("server", f"PostgreSQL {result.server_version}")
        self.line("TLS", tls or ("on" if result.tls else "off"))
        self.line("channel binding", CHANNEL_BINDING.get(result.channel_binding, "unknown"))
        self.line("connect", f"{result.connect_ms:.0f} ms" if result.connect_ms else "reused")
        self.line(
            "round trip",
            f"{result.round_trip_ms:.1f} ms, then median {statistics.median(samples):.1f} ms "
            f"of {EXTRA_ROUND_TRIPS}",
        )

    def line(self, label, value):
        self.stdout.write(f"{label + ':':<17}{value}")


def tls_session(pgconn):
    """The TLS version and cipher, from libpq's PQsslAttribute (psycopg does not wrap it).

    The libpq psycopg loaded is found among the process's mapped files (Linux); None elsewhere.
    """
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps if "/libpq" in line}
    if not paths:
        return None
    attribute = ctypes.CDLL(paths.pop()).PQsslAttribute
    attribute.restype = ctypes.c_char_p
    attribute.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    values = [attribute(pgconn.pgconn_ptr, key) for key in (b"protocol", b"cipher")]
    return ", ".join(value.decode() for value in values if value) or None
