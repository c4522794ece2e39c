"""Reads on a read replica: a real hot standby streamed from the stand-in, behind its own PgBouncer.

The app serves views that read through the ORM's router and report `pg_is_in_recovery()` of the
connection the read ran on: true only on the standby.
"""
# ruff: noqa: F811  (pytest hands the imported `project` fixture to tests by that name)

import json
import tempfile
import time

import pytest

from served_project import get, one_query_settings, serve

# The fixture: a project per Django version, with a database of its own on the stand-in.
from test_against_neon import project  # noqa: F401

pytestmark = pytest.mark.slow

# Every read runs `WHERE` through the ORM's router, as any queryset does.
REPLICA_URLS = """\
from django.db import transaction
from django.http import JsonResponse
from django.urls import path

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


urlpatterns = [path("read/", read), path("write-then-read/", write_then_read)]
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


def get_json(url):
    status, body = get(url)
    assert status == 200, body
    return json.loads(body)


def eventually(read, until, seconds=10):
    """read() until until(answer) holds: the standby replays the primary's writes a moment later."""
    deadline = time.monotonic() + seconds
    while not until(answer := read()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


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
        replica.stop_pooler()
        try:
            assert get_json(f"{base}/read/")["plain"] == {"standby": False, "users": 1}
            assert get_json(f"{base}/write-then-read/?name=bob")["after"]["users"] == 2
        finally:
            replica.start_pooler()
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
