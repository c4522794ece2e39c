"""Tests of the Neon stand-in itself: it must behave like Neon where it matters."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from neon_standin import DIRECT_HOST, POOLER_HOST, StandInUnavailable, start
from served_project import wait_until

pytestmark = pytest.mark.slow

METACHARACTERS = "@:/?#%&'\"$\\ "
URL_SAFE = string.ascii_letters + string.digits + "-._~"


@pytest.fixture(scope="module")
def standin(start_standin):
    # An instance of its own: these tests stop, suspend and restart it.
    standin = start_standin()
    yield standin
    standin.stop()


def with_params(url: str, **params: str) -> str:
    """The URL with query parameters replaced or added."""
    base, _, query = url.partition("?")
    pairs = dict(pair.split("=", 1) for pair in query.split("&"))
    pairs.update(params)
    return base + "?" + "&".join(f"{key}={value}" for key, value in pairs.items())


def ssl_seen_by_server(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]


def test_password_is_full_of_metacharacters_and_percent_encoded(standin):
    assert set(METACHARACTERS) <= set(standin.password)
    for url in (standin.direct_url, standin.pooled_url):
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        encoded_password = userinfo.partition(":")[2]
        # Only unreserved characters and %XX escapes may remain.
        assert set(encoded_password) <= set(URL_SAFE + "%")
        assert unquote(encoded_password) == standin.password


def test_direct_url_uses_tls_scram_and_channel_binding(standin):
    assert "channel_binding=require" in standin.direct_url
    # channel_binding=require makes libpq refuse anything but SCRAM-SHA-256-PLUS.
    with psycopg.connect(standin.direct_url) as conn:
        assert conn.pgconn.ssl_in_use
        assert ssl_seen_by_server(conn)
        assert conn.info.host == DIRECT_HOST
        assert conn.info.hostaddr == "127.0.0.1"
        row = conn.execute("SELECT current_user, current_database()").fetchone()
        assert row == ("neondb_owner", "neondb")


@pytest.mark.parametrize("endpoint", ["direct", "pooled"])
def test_connections_without_tls_are_refused(standin, endpoint):
    url = getattr(standin, f"{endpoint}_url")
    plain = with_params(url, sslmode="disable", channel_binding="disable")
    with pytest.raises(psycopg.OperationalError, match="no encryption|SSL required"):
        psycopg.connect(plain)


@pytest.mark.parametrize("endpoint", ["direct", "pooled"])
def test_wrong_password_is_refused(standin, endpoint):
    url = getattr(standin, f"{endpoint}_url")
    wrong = url.replace("neondb_owner:", "neondb_owner:wrong", 1)
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(wrong)


def test_verify_full_works_with_the_root_cert_and_neon_host_names(standin):
    for url in (standin.direct_url, standin.pooled_url):
        strict = with_params(url, sslmode="verify-full", sslrootcert=standin.root_cert)
        with psycopg.connect(strict) as conn:
            assert conn.pgconn.ssl_in_use


def test_pooled_url_goes_through_pgbouncer_with_tls(standin):
    assert "channel_binding" not in standin.pooled_url
    with psycopg.connect(standin.pooled_url) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.info.host == POOLER_HOST
        assert conn.info.port == standin.pooler_port
        # PgBouncer also speaks TLS to the server.
        assert ssl_seen_by_server(conn)
        assert conn.execute("SELECT current_user").fetchone()[0] == "neondb_owner"
    # PgBouncer cannot do channel binding, which is why the pooled URL lacks it.
    bound = with_params(standin.pooled_url, channel_binding="require")
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(bound)


def test_pooler_rejects_startup_options_like_neon(standin):
    with_options = with_params(standin.pooled_url, options="-csearch_path%3Dpublic")
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        psycopg.connect(with_options)


def test_pooler_runs_in_transaction_mode(standin):
    # In session mode each client owns a server backend for its whole life, so
    # two clients connected at once could never share one, nor see each other's
    # SET. In transaction mode the backend returns to the pool after each
    # transaction and (PgBouncer reuses the most recently freed one) serves the
    # next client, session state included: the hazard Neon's docs warn about.
    with (
        psycopg.connect(standin.pooled_url, autocommit=True) as first,
        psycopg.connect(standin.pooled_url, autocommit=True) as second,
    ):
        first.execute("SET standin.marker = 'set by first'")
        (first_pid,) = first.execute("SELECT pg_backend_pid()").fetchone()
        second_pid, marker = second.execute(
            "SELECT pg_backend_pid(), current_setting('standin.marker', true)"
        ).fetchone()
        assert second_pid == first_pid
        assert marker == "set by first"
        first.execute("RESET standin.marker")


def test_stop_pooler_refuses_and_start_pooler_restores(standin):
    standin.stop_pooler()
    try:
        with pytest.raises(psycopg.OperationalError, match="refused"):
            psycopg.connect(standin.pooled_url)
        with psycopg.connect(standin.direct_url) as conn:  # the server is unaffected
            conn.execute("SELECT 1")
    finally:
        standin.start_pooler()
    with psycopg.connect(standin.pooled_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_suspend_cuts_open_connections_and_fresh_ones_work(standin):
    direct = psycopg.connect(standin.direct_url, autocommit=True)
    pooled = psycopg.connect(standin.pooled_url, autocommit=True)
    with direct, pooled:
        direct.execute("SELECT 1")
        pooled.execute("SELECT 1")  # idle between transactions, as Django leaves it
        standin.suspend()
        for conn in (direct, pooled):
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
    for url in (standin.direct_url, standin.pooled_url):
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_restart_server_cuts_direct_and_in_transaction_connections(standin):
    direct = psycopg.connect(standin.direct_url, autocommit=True)
    pooled_idle = psycopg.connect(standin.pooled_url, autocommit=True)
    pooled_busy = psycopg.connect(standin.pooled_url)  # holds a server backend
    with direct, pooled_idle, pooled_busy:
        direct.execute("SELECT 1")
        (old_pid,) = pooled_idle.execute("SELECT pg_backend_pid()").fetchone()
        pooled_busy.execute("SELECT 1")
        standin.restart_server()
        for conn in (direct, pooled_busy):
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        # Unlike suspend(), PgBouncer survives: a client idle between
        # transactions just gets a new server backend.
        (new_pid,) = pooled_idle.execute("SELECT pg_backend_pid()").fetchone()
        assert new_pid != old_pid
    with psycopg.connect(standin.direct_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_role_can_create_a_database_reachable_direct_and_pooled(standin):
    with psycopg.connect(standin.direct_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS test_standin")
        conn.execute("CREATE DATABASE test_standin")
        try:
            for url in (standin.direct_url, standin.pooled_url):
                other = url.replace("/neondb?", "/test_standin?")
                with psycopg.connect(other) as test_conn:
                    row = test_conn.execute("SELECT current_database()").fetchone()
                    assert row == ("test_standin",)
        finally:
            # FORCE: PgBouncer keeps its server connection to the database open.
            conn.execute("DROP DATABASE test_standin WITH (FORCE)")


def test_backend_count_filters_by_application_name(standin):
    assert standin.backend_count("standin-count") == 0
    conns = [
        psycopg.connect(standin.direct_url, application_name="standin-count") for _ in range(2)
    ]
    assert standin.backend_count("standin-count") == 2
    assert standin.backend_count() >= 2
    for conn in conns:
        conn.close()
    assert wait_until(lambda: standin.backend_count("standin-count") == 0)


DJANGO_CHECK = """
import json, sys
import dj_database_url, django
from django.conf import settings
from django.db import connections

settings.configure(DATABASES={
    "default": dj_database_url.parse(sys.argv[1]),
    "pooled": dj_database_url.parse(sys.argv[2]),
})
django.setup()
result = {}
for alias in ("default", "pooled"):
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        result[alias] = [*cursor.fetchone(), connections[alias].connection.info.host]
print(json.dumps(result))
"""


def test_django_connects_with_both_urls_via_dj_database_url(standin):
    # A subprocess: settings.configure() can only happen once per interpreter.
    completed = subprocess.run(
        [sys.executable, "-c", DJANGO_CHECK, standin.direct_url, standin.pooled_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {
        "default": ["neondb_owner", True, DIRECT_HOST],
        "pooled": ["neondb_owner", True, POOLER_HOST],
    }


def test_psycopg_keyword_arguments_with_hostaddr_work(standin):
    # What Django does with a DATABASES entry: OPTIONS become conninfo keywords.
    with psycopg.connect(
        host=POOLER_HOST,
        hostaddr="127.0.0.1",
        port=standin.pooler_port,
        dbname="neondb",
        user="neondb_owner",
        password=standin.password,
        sslmode="require",
    ) as conn:
        assert conn.pgconn.ssl_in_use


def is_alive(pid: int) -> bool:
    """True unless the process is gone or a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_stop_leaves_no_processes_ports_or_files():
    standin = start()
    postmaster_pid = int((standin.workdir / "data" / "postmaster.pid").read_text().split()[0])
    pooler_pid = standin._pooler.pid
    assert is_alive(postmaster_pid) and is_alive(pooler_pid)
    standin.stop()
    standin.stop()  # idempotent
    assert not standin.workdir.exists()
    assert not is_alive(postmaster_pid)
    assert not is_alive(pooler_pid)
    for url in (standin.direct_url, standin.pooled_url):
        with pytest.raises(psycopg.OperationalError, match="refused"):
            psycopg.connect(url)


def test_missing_pgbouncer_says_what_to_install(monkeypatch):
    import neon_standin

    real_which = neon_standin.shutil.which

    def which_without_pgbouncer(name, *args, **kwargs):
        return None if name == "pgbouncer" else real_which(name, *args, **kwargs)

    monkeypatch.setattr(neon_standin.shutil, "which", which_without_pgbouncer)
    with pytest.raises(StandInUnavailable, match="apt-get install -y pgbouncer"):
        start()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the servers over")
def test_base_dir_the_postgres_user_cannot_reach_is_explained(tmp_path_factory):
    # pytest's tmp dirs live under /tmp/pytest-of-root, which is private (0700).
    base_dir = tmp_path_factory.mktemp("neon")
    with pytest.raises(StandInUnavailable, match="cannot reach"):
        start(base_dir)
    assert list(base_dir.iterdir()) == []  # nothing left behind
