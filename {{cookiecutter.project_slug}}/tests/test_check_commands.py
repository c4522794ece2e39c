"""The neon checks as Django runs them, and `manage.py neon_info`, on the configured database."""

import re

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from fresh_process import run_python

from config import neon


def manage(*args, **env):
    """manage.py in a clean environment with a Neon URL; no database is reached."""
    return run_python("manage.py", *args, **env)


def test_check_and_check_deploy_run_the_neon_checks():
    clean = manage("check", "--tag", "neon")
    assert clean.returncode == 0 and "no issues" in clean.stdout, clean.stderr
    for command in (["check"], ["check", "--deploy"]):
        exported = manage(*command, DJANGO_USE_POOLER="true")
        assert exported.returncode == 1 and "(neon.E007)" in exported.stderr, exported.stderr


def test_check_refuses_a_bad_pool_setting_before_a_server_would():
    # Commands use no pool, but the release phase and CI run them: they stop on what would stop
    # the server.
    refused = manage("check", DJANGO_DB_POOL="maybe")
    assert refused.returncode == 1
    assert refused.stderr == "Error: DJANGO_DB_POOL=maybe must be true or false\n"


def test_a_conn_max_age_left_in_env_does_not_stop_a_pooled_process():
    found = manage("check", DJANGO_DB_POOL="true", DJANGO_CONN_MAX_AGE="600")
    assert found.returncode == 0, found.stderr


@pytest.mark.django_db
def test_the_database_check_passes_on_a_supported_server():
    call_command("check", "--database", "default")


@pytest.mark.django_db
def test_the_database_check_refuses_a_server_older_than_django_needs(monkeypatch):
    # The real server, measured against a bar one major version above it.
    major = connection.get_database_version()[0]
    monkeypatch.setattr(connection.features, "minimum_database_version", (major + 1,))
    with pytest.raises(SystemCheckError, match=r"neon\.E010"):
        call_command("check", "--database", "default")


@pytest.mark.django_db
def test_neon_info_reports_the_connection(capsys):
    call_command("neon_info")
    out = capsys.readouterr().out
    host = connection.settings_dict["HOST"]
    assert re.search(r"^driver: +psycopg 3\.\d+\.\d+ .*, libpq \d+\.\d+ \(\d+\)$", out, re.M)
    assert f"host:            {host} ({neon.host_kind(host)})" in out
    assert re.search(r"^server: +PostgreSQL \d+", out, re.M)
    assert re.search(r"^TLS: +TLSv1\.[23], \S+", out, re.M)
    assert re.search(r"^channel binding: +(required|not required|disabled)", out, re.M)
    assert re.search(r"^round trip: +\d+\.\d ms, then median \d+\.\d ms of 5$", out, re.M)
