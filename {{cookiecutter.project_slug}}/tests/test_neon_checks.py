"""The neon.* system checks of config/neon_checks.py, fed settings as settings.py resolves them.

Each check has a case that raises it and one that does not. No database needed.
"""

import pytest

from config import neon, neon_checks

POOLED = "postgresql://alex:secret@ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require"
DIRECT = POOLED.replace("-pooler", "")
ENVIRON = {"DATABASE_URL": POOLED}
LIBPQ_18 = 180000
COMMAND = ["manage.py", "migrate"]


def resolved(environ=ENVIRON, use_pooler=False, **overrides):
    """DATABASES["default"] as settings.py makes it, then changed as a hand-edit would."""
    database = neon.databases(environ, application_name="app", use_pooler=use_pooler)["default"]
    options = overrides.pop("OPTIONS", {})
    database.update(overrides)
    database["OPTIONS"].update(options)
    return database


def ids(database=None, environ=ENVIRON, argv=COMMAND, libpq_version=LIBPQ_18):
    databases = {"default": database if database is not None else resolved(environ)}
    problems = neon_checks.neon_problems(databases, environ, argv, libpq_version)
    return [problem.id for problem in problems]


def test_the_project_as_baked_passes_in_every_role():
    assert ids(resolved(use_pooler=False)) == []
    assert ids(resolved(use_pooler=True), argv=["manage.py", "runserver"]) == []


@pytest.mark.parametrize("sslmode", ["disable", "allow", "prefer"])
def test_e001_sslmode_weaker_than_require(sslmode):
    assert ids(resolved(OPTIONS={"sslmode": sslmode})) == ["neon.E001"]
    assert ids(resolved(OPTIONS={"sslmode": "verify-full"})) == []


def test_e002_a_parameter_given_twice():
    # settings.py refuses this at startup; the check covers settings made another way.
    environ = {"DATABASE_URL": POOLED.replace("sslmode=require", "sslmode=disable&sslmode=require")}
    assert ids(resolved(), environ=environ) == ["neon.E002"]
    assert "neon.E002" not in ids(environ=ENVIRON)


def test_e003_libpq_too_old_for_neon_names_the_fixes():
    (problem,) = neon_checks.neon_problems({"default": resolved()}, ENVIRON, COMMAND, 130008)
    assert problem.id == "neon.E003" and "endpoint ID is not specified" in problem.msg
    assert "psycopg[binary]" in problem.hint
    assert "options=endpoint%3Dep-cool-darkness-a1b2c3d4" in problem.hint
    with_endpoint = resolved(OPTIONS={"options": "endpoint=ep-cool-darkness-a1b2c3d4"})
    assert ids(with_endpoint, libpq_version=130008) == []
    assert ids(resolved(), libpq_version=140000) == []


def test_e004_server_side_cursors_behind_the_pooler():
    pooled = resolved(use_pooler=True, DISABLE_SERVER_SIDE_CURSORS=False)
    assert ids(pooled, argv=["manage.py", "runserver"]) == ["neon.E004"]
    # Not Neon: pooled because its address is not the direct one, as config/neon.py decides.
    environ = {
        "DATABASE_URL": "postgresql://u:p@bouncer:6432/app",
        "DATABASE_URL_UNPOOLED": "postgresql://u:p@db:5432/app",
    }
    bouncer = resolved(environ, use_pooler=True, DISABLE_SERVER_SIDE_CURSORS=False)
    assert ids(bouncer, environ=environ, argv=["manage.py", "runserver"]) == ["neon.E004"]
    assert ids(resolved(environ, use_pooler=False), environ=environ) == []


@pytest.mark.parametrize(
    ("max_age", "environ"),
    [(None, {}), (600, {}), (900, {"NEON_SCALE_TO_ZERO_SECONDS": "600"})],
    ids=["unlimited", "past-the-default-300-s", "past-a-longer-delay"],
)
def test_e005_connections_kept_past_the_suspend(max_age, environ):
    environ = {**ENVIRON, **environ}
    assert ids(resolved(environ, CONN_MAX_AGE=max_age), environ=environ) == ["neon.E005"]


def test_e005_not_for_connections_the_compute_outlives():
    assert ids(resolved(CONN_MAX_AGE=300)) == []
    never = {**ENVIRON, "NEON_SCALE_TO_ZERO_SECONDS": "never"}
    assert ids(resolved(never, CONN_MAX_AGE=3600), environ=never) == []


def test_e006_kept_connections_without_a_liveness_check():
    assert ids(resolved(CONN_HEALTH_CHECKS=False)) == ["neon.E006"]
    assert ids(resolved(CONN_HEALTH_CHECKS=False, CONN_MAX_AGE=0)) == []


def test_e007_a_command_that_would_go_through_the_pooler():
    # DJANGO_USE_POOLER exported for every process: migrate and tests get the pooled URL.
    assert ids(resolved(use_pooler=True), argv=COMMAND) == ["neon.E007"]
    assert ids(resolved(use_pooler=True), argv=["manage.py", "test"]) == ["neon.E007"]
    assert ids(resolved(use_pooler=True), argv=["manage.py", "runserver"]) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL_UNPOOLED", POOLED),
        ("PGHOST_UNPOOLED", "ep-a-1-pooler.us-east-2.aws.neon.tech"),
    ],
)
def test_e008_the_direct_url_pointing_at_the_pooler(name, value):
    # settings.py refuses this as it loads; the check catches settings built any other way.
    assert "neon.E008" in ids(resolved(), environ={**ENVIRON, name: value})
    assert "neon.E008" not in ids(resolved(), environ={**ENVIRON, name: DIRECT})


def test_e009_djangos_pool_with_persistent_connections():
    short_lived = {"pool": {"max_lifetime": 240}}
    assert ids(resolved(OPTIONS=short_lived)) == ["neon.E009"]
    assert ids(resolved(CONN_MAX_AGE=0, OPTIONS=short_lived)) == []


def test_e012_pooled_connections_kept_past_the_suspend():
    # psycopg_pool's default lifetime is an hour; the compute suspends after 300 s.
    assert ids(resolved(CONN_MAX_AGE=0, OPTIONS={"pool": True})) == ["neon.E012"]
    assert ids(resolved(CONN_MAX_AGE=0, OPTIONS={"pool": {"max_lifetime": 400}})) == ["neon.E012"]
    longer = {**ENVIRON, "NEON_SCALE_TO_ZERO_SECONDS": "600"}
    within = resolved(longer, CONN_MAX_AGE=0, OPTIONS={"pool": {"max_lifetime": 400}})
    assert ids(within, environ=longer) == []


def test_the_pool_as_config_neon_makes_it_passes():
    environ = {**ENVIRON, "DJANGO_DB_POOL": "true"}
    pooled = neon.databases(environ, application_name="app", use_pooler=True)["default"]
    assert pooled["CONN_MAX_AGE"] == 0 and pooled["OPTIONS"]["pool"]["max_lifetime"] < 300
    assert ids(pooled, environ=environ, argv=["manage.py", "runserver"]) == []


def test_w001_channel_binding_not_required_on_neon():
    without = {"DATABASE_URL": POOLED.replace("&channel_binding=require", "")}
    assert ids(resolved(without), environ=without) == ["neon.W001"]
    local = {"DATABASE_URL": "postgresql://u:p@localhost/app"}
    assert ids(resolved(local), environ=local) == []


def test_w001_reads_pgchannelbinding_as_libpq_does():
    without = {"DATABASE_URL": POOLED.replace("&channel_binding=require", "")}
    exported = {**without, "PGCHANNELBINDING": "require"}
    assert ids(resolved(exported), environ=exported) == []
    weakened = {**without, "PGCHANNELBINDING": "prefer"}
    assert ids(resolved(weakened), environ=weakened) == ["neon.W001"]


def test_w001_names_pgchannelbinding_for_the_pg_variables():
    pg_variables = {"PGHOST": "ep-a-1.us-east-2.aws.neon.tech", "PGUSER": "u", "PGPASSWORD": "p"}
    databases = {"default": resolved(pg_variables)}
    (problem,) = neon_checks.neon_problems(databases, pg_variables, COMMAND, LIBPQ_18)
    assert problem.id == "neon.W001" and "PGCHANNELBINDING=require" in problem.hint
    pg_variables["PGCHANNELBINDING"] = "require"
    assert ids(resolved(pg_variables), environ=pg_variables) == []


def test_e010_names_the_versions_and_what_to_do():
    problem = neon_checks.server_too_old("default", "PostgreSQL 15 or later is required.")
    assert problem.id == "neon.E010" and "Django 5.2 LTS" in problem.hint


def test_other_engines_are_left_alone():
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
    assert ids(sqlite, environ={}) == []
