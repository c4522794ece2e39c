"""`manage.py check --tag neon`: settings that work on a laptop and break on Neon.

Registered by the status app, so plain `check`, `check --deploy` and every command that runs
checks (runserver, migrate) include them. Each check reads what settings.py resolved
(settings.DATABASES, as this process will connect) and, where only the text shows the problem,
the environment the URLs came from. The checks themselves are plain functions of those values,
so the tests can feed them any case; the facts about Neon come from config/neon.py.

neon.E010 asks the server for its version, so, like Django's own database checks, it runs only
when a command asks for the database: `check --database default`, and migrate.
"""

import os
import sys
from urllib.parse import urlsplit

import django
import psycopg
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, NotSupportedError, connections

from config import neon

SUPPORTED_LIBPQ = 140000  # the first libpq that sends the host name (SNI) Neon routes by


@register("neon")
def check_neon_settings(app_configs=None, **kwargs):
    return neon_problems(settings.DATABASES, os.environ, sys.argv, psycopg.pq.version())


# Only the database tag: Django 6 runs every check of a tag given with --tag against every
# database, so a "neon" tag here would make `check --tag neon` connect.
@register(Tags.database)
def check_server_version(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    problems = []
    for alias in databases:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        try:
            connection.ensure_connection()
            found = connection.get_database_version()
        except NotSupportedError as error:  # Django refuses the server as it connects
            problems.append(server_too_old(alias, str(error)))
            continue
        except DatabaseError as error:
            problems.append(
                Error(
                    f"Cannot reach database '{alias}' to check its version: {neon.describe(error)}",
                    hint="Run `manage.py dbcheck` to see the connection on its own.",
                    id="neon.E011",
                )
            )
            continue
        needed = connection.features.minimum_database_version
        if found < needed:
            problems.append(
                server_too_old(
                    alias,
                    f"Django {django.get_version()} needs PostgreSQL {version_text(needed)} "
                    f"or later; '{alias}' runs {version_text(found)}.",
                )
            )
    return problems


def neon_problems(databases, environ, argv, libpq_version):
    """Every neon.* problem of these DATABASES, for a process started with `argv`."""
    problems = url_problems(environ)
    for alias, database in databases.items():
        engine = database.get("ENGINE", "")
        if "postgresql" not in engine and "neon" not in engine:
            continue
        problems += database_problems(alias, database, environ, libpq_version)
        if alias == "default":
            problems += command_problems(database, environ, argv)
    return problems


def url_problems(environ):
    problems = []
    for name in neon.URL_VARIABLES:
        repeated = neon.repeated_parameters(environ.get(name, ""))
        if repeated:
            problems.append(
                Error(
                    f"{name} gives {', '.join(repeated)} more than once.",
                    hint="Keep one of each. Tools disagree on which one counts (Django gets "
                    "both, as a list, and the driver refuses it), so sslmode=disable&"
                    "sslmode=require passes one check and means no TLS to another tool.",
                    id="neon.E002",
                )
            )
    for name in ("DATABASE_URL_UNPOOLED", "PGHOST_UNPOOLED"):
        value = environ.get(name, "")
        host = urlsplit(value).hostname if "://" in value else value
        if neon.host_kind(host) == "pooled":
            problems.append(
                Error(
                    f"{name} points at Neon's pooler ({host}).",
                    hint="Migrations and tests need a real session: use the direct connection "
                    "string (the host without -pooler), or leave it empty to derive it.",
                    id="neon.E008",
                )
            )
    return problems


def database_problems(alias, database, environ, libpq_version):
    problems = []
    options = database.get("OPTIONS", {})
    host = database.get("HOST", "")
    on_neon = neon.host_kind(host) != "other"
    max_age = database.get("CONN_MAX_AGE", 0)
    sslmode = options.get("sslmode", "prefer")  # libpq's default when nothing says otherwise
    if isinstance(sslmode, str) and sslmode in neon.WEAK_SSLMODES:  # twice is neon.E002
        problems.append(
            Error(
                f"Database '{alias}' connects with sslmode={sslmode}.",
                hint="Neon refuses connections without TLS: use sslmode=require, or "
                "verify-full to check the server's certificate too.",
                id="neon.E001",
            )
        )
    names_endpoint = "endpoint=" in options.get("options", "")
    if on_neon and libpq_version < SUPPORTED_LIBPQ and not names_endpoint:
        endpoint = neon.endpoint(host)
        problems.append(
            Error(
                f"libpq {version_text(libpq_version)} cannot tell Neon which endpoint "
                f"'{alias}' wants: connecting fails with 'endpoint ID is not specified'.",
                hint="Neon routes connections by the host name sent in TLS (SNI), which libpq "
                "sends from version 14. Install psycopg[binary] 3.x, whose wheel bundles a "
                f"current libpq, or add options=endpoint%3D{endpoint} to the URL.",
                id="neon.E003",
            )
        )
    if behind_pooler(database, environ) and not database.get("DISABLE_SERVER_SIDE_CURSORS"):
        problems.append(
            Error(
                f"Database '{alias}' goes through a pooler with server-side cursors on.",
                hint="In transaction mode the pooler loses the WITH HOLD cursors that "
                ".iterator() opens outside a transaction ('portal ... does not exist'): set "
                "DISABLE_SERVER_SIDE_CURSORS = True, as config/neon.py does for pooled URLs.",
                id="neon.E004",
            )
        )
    suspend = neon.scale_to_zero_seconds(environ)
    if on_neon and (max_age is None or (suspend is not None and max_age > suspend)):
        kept = "for ever (None)" if max_age is None else f"for {max_age} s"
        cut_by = "pooler restarts and compute updates" if suspend is None else "a suspend"
        problems.append(
            Error(
                f"Database '{alias}' keeps connections {kept}: longer than {cut_by} lets them "
                "live.",
                hint="The compute suspends after NEON_SCALE_TO_ZERO_SECONDS idle "
                f"({neon.SCALE_TO_ZERO_SECONDS} s by default) and cuts every connection: keep "
                "DJANGO_CONN_MAX_AGE at or below it, "
                "never unlimited.",
                id="neon.E005",
            )
        )
    if on_neon and max_age != 0 and not database.get("CONN_HEALTH_CHECKS"):
        problems.append(
            Error(
                f"Database '{alias}' keeps connections without CONN_HEALTH_CHECKS.",
                hint="A suspend cuts kept connections, and the next request on one fails with "
                "'SSL SYSCALL error: EOF detected': set CONN_HEALTH_CHECKS = True, or "
                "DJANGO_CONN_MAX_AGE=0.",
                id="neon.E006",
            )
        )
    pool = options.get("pool")
    if pool and max_age != 0:
        problems.append(
            Error(
                f"Database '{alias}' uses Django's connection pool with CONN_MAX_AGE={max_age}.",
                hint="The pool keeps the connections itself (its max_lifetime): set "
                "DJANGO_CONN_MAX_AGE=0 with OPTIONS['pool'], or drop the pool.",
                id="neon.E009",
            )
        )
    # psycopg_pool keeps a connection an hour unless told otherwise.
    lifetime = neon.POOL_LIFETIME_SECONDS
    if isinstance(pool, dict):
        lifetime = pool.get("max_lifetime", lifetime)
    if on_neon and pool and suspend is not None and lifetime > suspend:
        problems.append(
            Error(
                f"Database '{alias}' uses Django's connection pool with max_lifetime={lifetime:g}"
                f" s: longer than the compute lives without a request ({suspend} s).",
                hint="A suspend cuts every pooled connection: keep OPTIONS['pool']"
                "['max_lifetime'] below NEON_SCALE_TO_ZERO_SECONDS, as config/neon.py does "
                "for DJANGO_DB_POOL.",
                id="neon.E012",
            )
        )
    # libpq falls back on PGCHANNELBINDING when the connection string does not say.
    channel_binding = options.get("channel_binding", environ.get("PGCHANNELBINDING"))
    if on_neon and channel_binding != "require":
        if environ.get("DATABASE_URL", "").strip():
            remedy = "Copy the string again from Neon's Connect dialog, or add the parameter."
        else:
            remedy = "Set PGCHANNELBINDING=require next to PGHOST."
        problems.append(
            Warning(
                f"Database '{alias}' does not require channel binding.",
                hint="Neon's connection strings end in channel_binding=require: it ties the "
                "password exchange to the TLS session, so a man in the middle cannot relay "
                f"it. {remedy}",
                id="neon.W001",
            )
        )
    return problems


def command_problems(database, environ, argv):
    """Only request handlers (wsgi.py, asgi.py, runserver) may use the pooler."""
    if argv[1:2] == ["runserver"] or not behind_pooler(database, environ):
        return []
    return [
        Error(
            "This command connects through the pooler: migrate and the test runner would too.",
            hint="DJANGO_USE_POOLER is for processes that serve requests; wsgi.py, asgi.py and "
            "runserver set it themselves. Do not export it for every process (a platform's "
            "shared environment, a shell): commands then use DATABASE_URL_UNPOOLED.",
            id="neon.E007",
        )
    ]


def behind_pooler(database, environ):
    host, port = database.get("HOST", ""), int(database.get("PORT") or neon.DEFAULT_PORT)
    try:
        pooler = neon.pooler_address(environ)
    except neon.NeonConfigError:
        pooler = None
    return neon.host_kind(host) == "pooled" or (host, port) == pooler


def server_too_old(alias, message):
    return Error(
        message,
        hint="Neon serves PostgreSQL 14 to 18, and a project keeps its major version: Django "
        "6.1 needs 15 or later. Move the data to a Neon project on a newer Postgres "
        "(pg_dump, pg_restore), or stay on Django 5.2 LTS, which supports 14.",
        id="neon.E010",
    )


def version_text(version):
    """(15, 4) or 150004 as 15.4."""
    if isinstance(version, int):
        version = (version // 10000, version % 10000)
    return ".".join(str(part) for part in version)
