"""Baked projects against the local Neon stand-in: real PostgreSQL over TLS, PgBouncer in
transaction mode as the pooler, and gunicorn serving the app. Each Django version gets its own
database on the stand-in, created by the role the way Django's test runner would."""

import json
from contextlib import contextmanager

import pytest

from served_project import get, serve

pytestmark = pytest.mark.slow

REQUESTS = 60
SUSPEND_EVERY = 10
# The seed guide's persistent setup: keep connections, never test them before reuse.
NAIVE_SETTINGS = """\
from config.settings import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
"""


@contextmanager
def gunicorn(project, **env):
    """The project served by gunicorn in production mode, its environment changed by `env`."""
    with serve(project.project, project.env(**env)) as base:
        yield base


def test_bake_builds_and_connects_over_the_direct_host(project):
    assert "✓ Django checks" in project.output
    line = next(
        line for line in project.output.splitlines() if "connect over the direct host" in line
    )
    assert " ✓ " in line, project.output
    assert "(direct)" in line and "TLS on" in line and "channel binding required" in line


def test_migrate_runs_over_the_direct_host(project, neon):
    with neon.pooler_stopped():
        result = project.manage("migrate", "--noinput")
    assert "Applying accounts.0001_initial... OK" in result.stdout


def test_the_server_sees_the_project_by_name(project):
    query = (
        "from django.db import connection; cursor = connection.cursor(); "
        "cursor.execute('SELECT application_name FROM pg_stat_activity "
        "WHERE pid = pg_backend_pid()'); print(cursor.fetchone()[0])"
    )
    shown = project.manage("shell", "-c", query).stdout.splitlines()[-1]
    assert shown == project.project.name  # the slug, e.g. standin_5_2


def test_requests_go_through_the_pooler(project, neon):
    project.manage("migrate", "--noinput")
    with gunicorn(project) as base:
        assert get(f"{base}/health/") == (200, '{"status": "ok"}')
        with neon.pooler_stopped():
            assert get(f"{base}/health/") == (503, '{"status": "unavailable"}')
        status, body = get(f"{base}/")
        assert status == 200 and "Connected to the database." in body
    with gunicorn(project, DJANGO_DEBUG="true") as base:
        database = json.loads(get(f"{base}/health/")[1])["database"]
    assert database["pooled"] is True
    assert database["host"] == "ep-standin-a1b2c3d4-pooler.us-east-2.aws.neon.tech"


def test_production_serves_the_admin_with_its_static_files(project):
    project.manage("migrate", "--noinput")
    project.manage("collectstatic", "--noinput", env={"DJANGO_DEBUG": "false"})
    with gunicorn(project) as base:
        status, page = get(f"{base}/admin/login/")
        assert status == 200 and "/static/admin/css/base.css" in page
        status, css = get(f"{base}/static/admin/css/base.css")
        assert status == 200 and "body" in css


def test_the_projects_own_tests_pass_over_the_direct_host(project, neon):
    with neon.pooler_stopped():
        result = project.run(project.python, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert " passed" in result.stdout and "failed" not in result.stdout


def hammer(base, neon):
    """REQUESTS home-page requests, with a Neon-style suspend every SUSPEND_EVERY; the failures."""
    failures = []
    for number in range(1, REQUESTS + 1):
        status, body = get(f"{base}/health/")
        if status != 200:
            failures.append((number, json.loads(body).get("error")))
        if number % SUSPEND_EVERY == 0:
            neon.suspend()
    return failures


def test_the_default_config_survives_compute_suspends(project, neon):
    project.manage("migrate", "--noinput")
    with gunicorn(project) as base:
        assert hammer(base, neon) == []


def test_the_seed_guides_naive_config_does_not(project, neon):
    (project.project / "config" / "naive_settings.py").write_text(NAIVE_SETTINGS)
    try:
        with gunicorn(project, DJANGO_SETTINGS_MODULE="config.naive_settings") as base:
            failures = hammer(base, neon)
    finally:
        (project.project / "config" / "naive_settings.py").unlink()
    # Every suspend but the last (after the final request) breaks the next request.
    assert len(failures) == REQUESTS // SUSPEND_EVERY - 1, failures


def test_the_app_recovers_from_a_server_restart(project, neon):
    with gunicorn(project) as base:
        assert get(f"{base}/health/")[0] == 200
        neon.restart_server()
        status, body = get(f"{base}/health/")
        assert status == 200, body
    assert "TLS on" in project.manage("dbcheck").stdout


def test_verify_full_checks_the_certificate(project, neon):
    direct = project.dotenv()["DATABASE_URL_UNPOOLED"].replace(
        "sslmode=require", "sslmode=verify-full"
    )
    trusted = project.manage(
        "dbcheck", env={"DATABASE_URL_UNPOOLED": f"{direct}&sslrootcert={neon.root_cert}"}
    )
    assert "TLS on" in trusted.stdout
    # Without the stand-in's own CA, certifi's bundle (Let's Encrypt and friends) must reject it.
    untrusted = project.manage("dbcheck", env={"DATABASE_URL_UNPOOLED": direct}, check=False)
    assert untrusted.returncode != 0 and "certificate verify failed" in untrusted.stderr
