"""The baked project's database backend (config/neon_backend/) against the Neon stand-in.

Round trips are counted on the wire by a proxy between the app and the pooler; what the server
ran is read from pg_stat_activity.
"""

import subprocess
import threading
import time

import psycopg
import pytest

from counting_proxy import CountingProxy
from served_project import ONE_QUERY_PATH, get, one_query_settings, serve

pytestmark = pytest.mark.slow

# TCP, SSLRequest, TLS 1.3, three SCRAM legs: what libpq needs before the first query.
HANDSHAKE_ROUND_TRIPS = 6
# Enough delay each way that a burst from one side (TLS's last message and the login, sent in
# two calls) reaches the proxy before the answer to its first packet, even on a busy machine.
PROXY_DELAY = 0.02


def database_of(project):
    return project.dotenv()["DATABASE_URL"].split("?")[0].rsplit("/", 1)[1]


def set_server_timezone(project, neon, zone):
    """The time zone new sessions start in, reported at login; the pooler relearns it."""
    with psycopg.connect(neon.direct_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {database_of(project)} SET timezone = '{zone}'")
    neon.stop_pooler()
    neon.start_pooler()


def pooled_env(project, proxy, **env):
    """The project's environment, with the pooled URL going through the proxy."""
    return project.env(DATABASE_URL=proxy.routed(project.dotenv()["DATABASE_URL"]), **env)


def test_one_round_trip_per_request_and_none_lost_to_suspends(project, neon):
    set_server_timezone(project, neon, "Etc/UTC")
    with (
        CountingProxy(neon.pooler_port, PROXY_DELAY) as proxy,
        one_query_settings(project.project, "one_query_settings") as settings,
        serve(project.project, pooled_env(project, proxy, DJANGO_SETTINGS_MODULE=settings)) as base,
    ):
        assert get(base + ONE_QUERY_PATH) == (200, "1")
        # A new connection and its first query: nothing else, no SET TIME ZONE.
        assert (proxy.connections, proxy.round_trips) == (1, HANDSHAKE_ROUND_TRIPS + 1)

        proxy.reset()
        for _ in range(20):
            assert get(base + ONE_QUERY_PATH) == (200, "1")
        # A kept connection: the liveness check sent nothing, each request one query.
        assert (proxy.connections, proxy.round_trips) == (0, 20)

        proxy.reset()
        failures = []
        for number in range(1, 31):
            status, body = get(base + ONE_QUERY_PATH)
            if status != 200:
                failures.append((number, status))
            if number % 10 == 0:
                neon.suspend()  # cuts every connection, restarts the pooler
        assert failures == []
        # Requests 11 and 21 found their connection cut and opened a new one, no more.
        assert proxy.connections == 2
        assert proxy.round_trips == 30 + 2 * HANDSHAKE_ROUND_TRIPS


SHOW_TIMEZONE = (
    "from django.db import connection; cursor = connection.cursor(); "
    "cursor.execute('SHOW timezone'); print(cursor.fetchone()[0])"
)


@pytest.mark.parametrize(
    ("zone", "extra_round_trips"),
    [("Etc/UTC", 0), ("Zulu", 0), ("UCT", 0), ("Europe/Paris", 1)],
)
def test_no_set_time_zone_when_the_server_is_on_utc_by_another_name(
    project, neon, zone, extra_round_trips
):
    set_server_timezone(project, neon, zone)
    try:
        with CountingProxy(neon.pooler_port, PROXY_DELAY) as proxy:
            env = pooled_env(project, proxy, DJANGO_USE_POOLER="true")
            shown = project.manage("shell", "-c", SHOW_TIMEZONE, env=env).stdout.split()[-1]
            round_trips = proxy.round_trips
    finally:
        set_server_timezone(project, neon, "Etc/UTC")
    assert shown == (zone if not extra_round_trips else "UTC")
    assert round_trips == HANDSHAKE_ROUND_TRIPS + extra_round_trips + 1


# Runs in the project over the direct host, one step per line the test sends.
IDLE_SESSION = """
import select
from django.db import connection

cursor = connection.cursor()
cursor.execute("LISTEN neon_backend_test")
cursor.execute("SELECT pg_backend_pid()")
print(cursor.fetchone()[0], flush=True)
socket = connection.connection.pgconn.socket
for _ in range(2):
    input()
    select.select([socket], [], [], 10)  # until the server's message is there
    print(connection.is_usable(), flush=True)
"""


def test_a_message_while_idle_keeps_the_connection_and_a_cut_one_is_dropped(project, neon):
    session = subprocess.Popen(
        [project.python, "manage.py", "shell", "-v", "0", "-c", IDLE_SESSION],
        cwd=project.project,
        env=project.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pid = int(session.stdout.readline())
        with psycopg.connect(neon.direct_url, autocommit=True) as admin:
            # A notification reaches an idle session at once: bytes on its socket, all is well.
            admin.execute("NOTIFY neon_backend_test, 'hello'")
            session.stdin.write("\n")
            session.stdin.flush()
            assert session.stdout.readline().strip() == "True"
            # ...and deciding so sent nothing: the server's last statement is still ours.
            (last,) = admin.execute(
                "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            assert last == "SELECT pg_backend_pid()"
            # A terminated backend says FATAL, then closes.
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            session.stdin.write("\n")
            session.stdin.flush()
            assert session.stdout.readline().strip() == "False"
    finally:
        session.kill()
        session.wait()


def timed_get(url, results):
    started = time.monotonic()
    results.append((get(url), time.monotonic() - started))


def test_connecting_is_retried_while_the_pooler_restarts_within_the_budget(project, neon):
    with (
        one_query_settings(project.project, "one_query_settings") as settings,
        serve(project.project, project.env(DJANGO_SETTINGS_MODULE=settings)) as base,
    ):
        with neon.pooler_stopped():
            results = []
            waiting = threading.Thread(target=timed_get, args=(base + ONE_QUERY_PATH, results))
            waiting.start()
            time.sleep(1)
        waiting.join()
    (answer, seconds) = results[0]
    assert answer == (200, "1")
    assert 1 <= seconds < 5  # waited for the pooler, within the default budget of 5 s


def test_connecting_gives_up_when_the_budget_is_spent(project, neon):
    env = project.env(NEON_CONNECT_RETRY_SECONDS="1.5")
    with (
        one_query_settings(project.project, "one_query_settings") as settings,
        serve(project.project, {**env, "DJANGO_SETTINGS_MODULE": settings}) as base,
    ):
        with neon.pooler_stopped():
            results = []
            timed_get(base + ONE_QUERY_PATH, results)
            timed_get(base + ONE_QUERY_PATH, results)  # within the budget's length: no retry
        time.sleep(1.5)  # the pause is over: connects retry, and succeed
        timed_get(base + ONE_QUERY_PATH, results)
    ((status, _), seconds), ((again, _), fast), ((after, _), _) = results
    assert status == again == 500 and after == 200
    assert 1.5 <= seconds < 3  # refused connections are quick: the budget is the bound
    assert fast < 0.5  # a compute that did not wake in time is not waited for at every touch


KEEPALIVE_OPTIONS = """
import socket
from django.db import connection

connection.ensure_connection()
with socket.socket(fileno=connection.connection.pgconn.socket) as sock:
    print(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0,
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    )
    sock.detach()  # the socket stays libpq's
"""


def test_the_connection_probes_a_silent_peer_within_half_a_minute(project):
    shown = project.manage("shell", "-v", "0", "-c", KEEPALIVE_OPTIONS).stdout.split()
    # First probe after 10 s of silence, then 3 probes 5 s apart: a vanished peer shows in 25 s.
    assert shown == ["True", "10", "5", "3"]
