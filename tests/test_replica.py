"""Reads on a read replica: a real hot standby streamed from the stand-in, behind its own PgBouncer.

The app serves views that read through the ORM's router and report `pg_is_in_recovery()` of the
connection the read ran on: true only on the standby.
"""

import http.client
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import pytest

from served_project import eventually, get, get_json, one_query_settings, serve

pytestmark = pytest.mark.slow

# Every read runs `WHERE` through the ORM's router, as any queryset does.
REPLICA_URLS = """\
from django.contrib.auth import login
from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import include, path

from accounts.models import User

WHERE = (
    "SELECT 0 AS id, pg_is_in_recovery() AS standby, "
    "(SELECT count(*) FROM accounts_user) AS users"
)


def where():
    row = next(iter(User.objects.raw(WHERE)))
    return {"standby": row.standby, "users": row.users}


def read(request):
    with transaction.atomic():
        in_transaction = where()
    return JsonResponse({"plain": where(), "in_transaction": in_transaction})


def write_then_read(request):
    before = where()
    User.objects.create(username=request.GET["name"])
    return JsonResponse({"before": before, "after": where()})


def raw_write_then_read(request):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET first_name = 'raw' WHERE username = %s", ["ada"])
    return JsonResponse({"after": where()})


def slow_read(request):
    row = next(iter(User.objects.raw(
        "SELECT 0 AS id, pg_is_in_recovery() AS standby, pg_sleep(%s) AS slept",
        [request.GET["seconds"]],
    )))
    return JsonResponse({"standby": row.standby})


def add_admin(request):
    User.objects.create_superuser(request.GET["name"])
    return JsonResponse(where())


def log_in(request):
    login(request, User.objects.get(username=request.GET["name"]))
    return JsonResponse({})


urlpatterns = [
    path("read/", read),
    path("write-then-read/", write_then_read),
    path("raw-write-then-read/", raw_write_then_read),
    path("slow-read/", slow_read),
    path("add-admin/", add_admin),
    path("log-in/", log_in),
    path("", include("config.urls")),  # the admin
]
"""


@pytest.fixture(scope="module")
def replica(neon):
    standby = neon.start_replica()
    yield standby
    standby.stop()


def database_of(project):
    return project.dotenv()["DATABASE_URL"].split("?")[0].rsplit("/", 1)[1]


def replica_env(project, replica, **env):
    database = database_of(project)
    return project.env(
        DATABASE_REPLICA_URL=replica.pooled_url.replace("/neondb?", f"/{database}?"), **env
    )


def browse(base, path, cookies=None):
    """(status, body, cookies set) of a GET sending `cookies`, as a browser behind an HTTPS proxy
    (not following redirects)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"X-Forwarded-Proto": "https"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        set_cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            set_cookies.load(header)
        return response.status, response.read().decode(), set_cookies
    finally:
        connection.close()


def test_reads_on_the_standby_writes_and_migrations_on_the_primary(project, neon, replica):
    env = replica_env(project, replica)
    before = replica.pooled_query_count(database_of(project))
    migrated = project.manage("migrate", "--noinput", env=env)
    assert "Applying accounts.0001_initial... OK" in migrated.stdout
    # The standby is read-only: a migration there would have failed. None was even tried.
    assert replica.pooled_query_count(database_of(project)) == before

    with (
        tempfile.TemporaryFile(mode="w+") as log,
        one_query_settings(project.project, "replica_settings", urls=REPLICA_URLS) as settings,
        serve(project.project, {**env, "DJANGO_SETTINGS_MODULE": settings}, 4, log=log) as base,
    ):
        # The migration reaches the standby a moment after the primary committed it.
        first = eventually(lambda: get(f"{base}/read/"), lambda answer: answer[0] == 200)
        assert first[0] == 200, first
        read = get_json(f"{base}/read/")
        assert read["plain"] == {"standby": True, "users": 0}
        # A transaction's reads stay with its writes, on the primary.
        assert read["in_transaction"] == {"standby": False, "users": 0}

        wrote = get_json(f"{base}/write-then-read/?name=ada")
        assert wrote["before"] == {"standby": True, "users": 0}
        # After its write, the request reads from the primary and sees what it wrote.
        assert wrote["after"] == {"standby": False, "users": 1}
        # The next request reads from the standby again, once it has replayed the write.
        later = eventually(
            lambda: get_json(f"{base}/read/")["plain"], lambda plain: plain["users"] == 1
        )
        assert later == {"standby": True, "users": 1}

        # Suspends of both computes cut every connection: no request fails.
        failures = []
        for number in range(1, 13):
            status, body = get(f"{base}/read/")
            if status != 200:
                failures.append((number, status, body[:200]))
            if number % 4 == 0:
                (neon if number % 8 else replica).suspend()
        assert failures == []
        assert eventually(lambda: get_json(f"{base}/read/")["plain"], lambda p: p["standby"])

        # The replica goes away: its reads go to the primary, with a warning in the log.
        with replica.pooler_stopped():
            assert get_json(f"{base}/read/")["plain"] == {"standby": False, "users": 1}
            assert get_json(f"{base}/write-then-read/?name=bob")["after"]["users"] == 2
        log.seek(0)
        warnings = [line for line in log if "The read replica is unreachable" in line]
        assert len(warnings) == 1 and " WARNING config.replica: " in warnings[0]
        # Once its pause is over, the replica serves reads again.
        back = eventually(lambda: get_json(f"{base}/read/")["plain"], lambda p: p["standby"])
        assert back == {"standby": True, "users": 2}


def test_read_your_writes_under_asgi(project, neon, replica):
    """Under uvicorn a request's sync work runs in another thread than its middleware."""
    env = replica_env(project, replica)
    project.manage("migrate", "--noinput", env=env)
    with (
        one_query_settings(project.project, "replica_settings", urls=REPLICA_URLS) as settings,
        serve(project.project, {**env, "DJANGO_SETTINGS_MODULE": settings}, asgi=True) as base,
    ):
        eventually(lambda: get(f"{base}/read/"), lambda answer: answer[0] == 200)
        users = get_json(f"{base}/read/")["plain"]["users"]
        wrote = get_json(f"{base}/write-then-read/?name=asgi")
        assert wrote["before"]["standby"] is True
        assert wrote["after"] == {"standby": False, "users": users + 1}
        later = eventually(
            lambda: get_json(f"{base}/read/")["plain"], lambda plain: plain["users"] == users + 1
        )
        assert later == {"standby": True, "users": users + 1}


def test_a_browser_reads_its_writes_in_its_next_requests_despite_lag(project, neon, replica):
    """Post/Redirect/Get and logging in, while the standby replays nothing (replication lag)."""
    env = replica_env(project, replica)
    project.manage("migrate", "--noinput", env=env)
    with (
        one_query_settings(project.project, "replica_settings", urls=REPLICA_URLS) as settings,
        serve(project.project, {**env, "DJANGO_SETTINGS_MODULE": settings}) as base,
    ):
        eventually(lambda: get(f"{base}/read/"), lambda answer: answer[0] == 200)
        users = get_json(f"{base}/add-admin/?name=boss")["users"]
        replayed = eventually(
            lambda: get_json(f"{base}/read/")["plain"], lambda plain: plain["users"] == users
        )
        assert replayed == {"standby": True, "users": users}

        with replica.replay_paused():
            status, _, cookies = browse(base, "/write-then-read/?name=lagged")
            assert status == 200
            pin = cookies["read_from_primary"]
            assert (pin["max-age"], pin["samesite"], pin["httponly"], pin["secure"]) == (
                "5",
                "Lax",
                True,
                True,
            )
            # Another browser reads the standby, which does not have the write yet.
            assert get_json(f"{base}/read/")["plain"] == {"standby": True, "users": users}
            # The writer's next request (the page a form redirects to) reads the primary.
            _, body, _ = browse(base, "/read/", {"read_from_primary": pin.value})
            assert json.loads(body)["plain"] == {"standby": False, "users": users + 1}

            # A write through a raw cursor pins the request's reads as the ORM's writes do.
            status, body, cookies = browse(base, "/raw-write-then-read/")
            assert json.loads(body)["after"] == {"standby": False, "users": users + 1}
            assert "read_from_primary" in cookies

            # Logged in moments ago: the session row is on the primary only.
            status, _, cookies = browse(base, "/log-in/?name=boss")
            session = {"sessionid": cookies["sessionid"].value}
            assert browse(base, "/admin/", {**session, "read_from_primary": "1"})[0] == 200
            # Sessions are read from the primary also once the cookie has expired.
            assert browse(base, "/admin/", session)[0] == 200


def test_migrating_the_replica_is_refused_in_one_line(project, replica):
    env = replica_env(project, replica)
    project.manage("migrate", "--noinput", env=env)
    # Nothing to do: nothing to refuse.
    assert project.manage("migrate", "--database", "replica", env=env).returncode == 0
    refused = project.run(
        project.python, "manage.py", "migrate", "accounts", "zero", "--database", "replica",
        env=env, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "CommandError: The read replica is read-only: migrate without --database replica"
    )
    assert "Traceback" not in refused.stderr


@contextmanager
def pooled_under_uvicorn(project, replica, **env):
    """(base URL, log file): the migrated project with Django's pool under uvicorn, its reads
    reaching the standby."""
    env = replica_env(project, replica, DJANGO_DB_POOL="true", **env)
    project.manage("migrate", "--noinput", env=env)
    with (
        tempfile.TemporaryFile(mode="w+") as log,
        one_query_settings(project.project, "replica_settings", urls=REPLICA_URLS) as settings,
        serve(
            project.project, {**env, "DJANGO_SETTINGS_MODULE": settings}, asgi=True, log=log
        ) as base,
    ):
        eventually(lambda: get_json(f"{base}/read/")["plain"], lambda p: p["standby"])
        yield base, log


def test_a_replica_away_costs_a_pooled_read_a_short_wait_and_one_warning(project, replica):
    """Under uvicorn with Django's pool: reads wait at most the replica pool's timeout."""
    with pooled_under_uvicorn(project, replica) as (base, log):
        with replica.pooler_stopped():
            started = time.monotonic()
            waits = []
            while time.monotonic() - started < 8:
                before = time.monotonic()
                assert get_json(f"{base}/read/")["plain"]["standby"] is False
                waits.append(time.monotonic() - before)
                time.sleep(0.2)
        away = time.monotonic() - started
        log.seek(0)
        lines = log.readlines()
    # The first read after each pause waits for the replica's pool (2 s), never the primary's 10 s.
    assert max(waits) < 4, waits
    warnings = [line for line in lines if "The read replica is unreachable" in line]
    # One warning per pause of 5 s; psycopg's pool adds none per attempt to reconnect, only one
    # for the connection it held when the replica went away (the reads came one at a time).
    assert 1 <= len(warnings) <= 1 + away // 5, warnings
    from_the_pool = [line for line in lines if "psycopg.pool" in line]
    assert len(from_the_pool) <= 1, from_the_pool
    assert all("discarding closed connection" in line for line in from_the_pool), from_the_pool
    # The warning says why, although psycopg's own line for each attempt is held back.
    assert all("Connection refused" in line for line in warnings), warnings


def test_a_busy_replica_pool_sends_a_read_to_the_primary_without_pausing_the_replica(
    project, replica
):
    """Its two connections lent to slow reads, the replica is busy, not away: two more reads
    wait the pool's 2 s and go to the primary, with no warning, and the replica is used next."""
    with pooled_under_uvicorn(project, replica, DJANGO_DB_POOL_MAX_SIZE="2") as (base, log):
        with ThreadPoolExecutor(4) as clients:
            answers = list(clients.map(get_json, [f"{base}/slow-read/?seconds=3"] * 4))
        assert sorted(answer["standby"] for answer in answers) == [False, False, True, True]
        assert get_json(f"{base}/read/")["plain"]["standby"] is True
        log.seek(0)
        assert "The read replica is unreachable" not in log.read()
