"""The Neon wiring in config/neon.py: URL rules and the DATABASES they make. No database needed."""

from urllib.parse import quote

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import neon

POOLED = "postgresql://alex:secret@ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require"
DIRECT = POOLED.replace("-pooler", "")
AZURE_POOLED = "postgresql://alex:secret@ep-quiet-lake-a1b2c3d4-pooler.eastus2.azure.neon.tech:5432/neondb?sslmode=require"
HARD_PASSWORD = "p@ss:w/rd?#%& x'\"$\\"


def url_with_password(password, host="ep-x-1-pooler.us-east-2.aws.neon.tech"):
    return f"postgresql://neondb_owner:{quote(password, safe='')}@{host}/neondb?sslmode=require"


@pytest.mark.parametrize(
    ("pooled", "direct"),
    [
        pytest.param(POOLED, DIRECT, id="aws"),
        pytest.param(AZURE_POOLED, AZURE_POOLED.replace("-pooler", ""), id="azure-with-port"),
        pytest.param(
            url_with_password(HARD_PASSWORD),
            url_with_password(HARD_PASSWORD, "ep-x-1.us-east-2.aws.neon.tech"),
            id="percent-encoded-password",
        ),
    ],
)
def test_pooled_and_direct_urls_derive_from_each_other(pooled, direct):
    assert neon.is_pooled(pooled) and not neon.is_pooled(direct)
    assert neon.direct(pooled) == direct
    assert neon.pooled(direct) == pooled
    assert neon.direct(direct) == direct and neon.pooled(pooled) == pooled


def test_non_neon_hosts_are_left_alone():
    url = "postgresql://app:pw@db.internal:6432/app"
    assert neon.pooled(url) == url and neon.direct(url) == url


def test_only_the_endpoint_label_changes_even_if_pooler_appears_elsewhere():
    url = "postgresql://ep-pooler:pw-pooler@ep-a-1-pooler.us-east-2.aws.neon.tech/db-pooler"
    expected = "postgresql://ep-pooler:pw-pooler@ep-a-1.us-east-2.aws.neon.tech/db-pooler"
    assert neon.direct(url) == expected


def test_without_password_keeps_user_host_and_parameters():
    url = url_with_password(HARD_PASSWORD) + "&application_name=a@b"
    assert neon.without_password(url) == (
        "postgresql://neondb_owner@ep-x-1-pooler.us-east-2.aws.neon.tech/neondb"
        "?sslmode=require&application_name=a@b"
    )


def test_an_at_sign_in_the_parameters_does_not_confuse_derivation():
    url = POOLED + "&application_name=a@b"
    assert neon.direct(url) == DIRECT + "&application_name=a@b"
    assert neon.pooled(DIRECT + "&application_name=a@b") == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@host/db", "must start with postgresql://"),
        ("postgresql://u:p@/db", "has no host"),
        ("postgresql://u:p@host:99999/db", "invalid port"),
        ("postgresql://u:p@host:0/db", "invalid port"),
        ("postgresql://u:p@host:port/db", "invalid port"),
        ("postgresql://u:pa/ss@host/db", "not percent-encoded"),
        ("postgresql://u:p@host", "names no database"),
        ("postgresql://u:p#w@host/db", "percent-encode"),
        ("postgresql://u:p@host/db?sslmode=disable", "sslmode=disable"),
        ("postgresql://u:p@host/db?sslmode=prefer", "sslmode=prefer"),
    ],
)
def test_check_refuses_unusable_urls_naming_the_variable(url, message):
    with pytest.raises(neon.NeonConfigError, match=message) as raised:
        neon.check(url, "DATABASE_URL")
    assert str(raised.value).startswith("DATABASE_URL ")


def test_check_accepts_what_neon_gives():
    assert neon.check(f"  {POOLED}\n") == POOLED
    assert neon.check("postgres://u:p@host/db") == "postgres://u:p@host/db"


def settings_for(environ, use_pooler=True):
    return neon.databases(environ, application_name="myapp", use_pooler=use_pooler)["default"]


def test_requests_use_the_pooler_and_everything_else_the_derived_direct_host():
    app = settings_for({"DATABASE_URL": POOLED}, use_pooler=True)
    command = settings_for({"DATABASE_URL": POOLED}, use_pooler=False)
    assert app["HOST"] == "ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
    assert command["HOST"] == "ep-cool-darkness-a1b2c3d4.us-east-2.aws.neon.tech"
    assert app["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert command["DISABLE_SERVER_SIDE_CURSORS"] is False


def test_an_explicit_unpooled_url_wins_over_derivation():
    environ = {"DATABASE_URL": POOLED, "DATABASE_URL_UNPOOLED": DIRECT.replace("secret", "new")}
    assert settings_for(environ, use_pooler=False)["PASSWORD"] == "new"
    other = {
        "DATABASE_URL": "postgresql://u:p@bouncer/db",
        "DATABASE_URL_UNPOOLED": "postgresql://u:p@db/db",
    }
    assert settings_for(other, use_pooler=False)["HOST"] == "db"


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(DIRECT.replace("ep-cool-darkness", "ep-other-branch"), id="other-endpoint"),
        pytest.param(DIRECT.replace("/neondb?", "/otherdb?"), id="other-database"),
        pytest.param(DIRECT.replace("alex:", "bob:"), id="other-role"),
        pytest.param("postgresql://u:p@db.internal/neondb", id="not-neon"),
    ],
)
def test_a_direct_url_that_is_not_the_twin_is_refused(other):
    with pytest.raises(ImproperlyConfigured, match="is not the direct twin of DATABASE_URL"):
        settings_for({"DATABASE_URL": POOLED, "DATABASE_URL_UNPOOLED": other})


def test_the_twin_may_differ_in_password_port_and_parameters():
    twin = DIRECT.replace("secret@", "rotated@").replace(".tech/", ".tech:5432/") + "&x=1"
    environ = {"DATABASE_URL": POOLED, "DATABASE_URL_UNPOOLED": twin}
    assert settings_for(environ, use_pooler=False)["PORT"] == 5432


def test_parameters_alone_do_not_make_a_connection_pooled():
    environ = {"DATABASE_URL": DIRECT, "DATABASE_URL_UNPOOLED": DIRECT + "&connect_timeout=20"}
    assert settings_for(environ, use_pooler=True)["DISABLE_SERVER_SIDE_CURSORS"] is False


def test_one_address_written_with_and_without_the_default_port_is_not_a_pooler():
    environ = {
        "DATABASE_URL": "postgresql://u:p@db.internal/app",
        "DATABASE_URL_UNPOOLED": "postgresql://u:p@db.internal:5432/app",
    }
    assert settings_for(environ, use_pooler=True)["DISABLE_SERVER_SIDE_CURSORS"] is False
    assert neon.pooler_address(environ) is None


def test_a_pooler_given_as_the_direct_url_is_refused():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL_UNPOOLED points at Neon's pooler"):
        settings_for({"DATABASE_URL": POOLED, "DATABASE_URL_UNPOOLED": POOLED})


def test_a_direct_database_url_alone_is_used_as_it_is():
    app = settings_for({"DATABASE_URL": DIRECT}, use_pooler=True)
    assert app["HOST"] == "ep-cool-darkness-a1b2c3d4.us-east-2.aws.neon.tech"
    assert app["DISABLE_SERVER_SIDE_CURSORS"] is False


def test_connection_defaults_for_neon():
    database = settings_for({"DATABASE_URL": POOLED.split("?")[0]})
    assert database["OPTIONS"]["sslmode"] == "require"
    assert database["OPTIONS"]["connect_timeout"] >= 10
    assert database["OPTIONS"]["application_name"] == "myapp"
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["CONN_MAX_AGE"] == 60
    assert database["ENGINE"] == "config.neon_backend"
    assert database["OPTIONS"]["connect_retry_seconds"] == 5
    assert database["OPTIONS"]["keepalives_idle"] == 10
    assert database["OPTIONS"]["gssencmode"] == "disable"


def test_libpq_parameters_in_the_url_pass_through():
    url = POOLED + "&options=endpoint%3Dep-cool-darkness-a1b2c3d4&connect_timeout=30"
    options = settings_for({"DATABASE_URL": url})["OPTIONS"]
    assert options["channel_binding"] == "require"
    assert options["options"] == "endpoint=ep-cool-darkness-a1b2c3d4"
    assert options["connect_timeout"] == 30


def test_percent_encoded_password_reaches_django_decoded():
    database = settings_for({"DATABASE_URL": url_with_password(HARD_PASSWORD)})
    assert database["PASSWORD"] == HARD_PASSWORD
    assert database["USER"] == "neondb_owner"


@pytest.mark.parametrize("rootcert", ["", "&sslrootcert=system"])
def test_verify_full_gets_a_ca_bundle_the_binary_driver_can_read(rootcert):
    import certifi

    url = POOLED.replace("sslmode=require", "sslmode=verify-full") + rootcert
    assert settings_for({"DATABASE_URL": url})["OPTIONS"]["sslrootcert"] == certifi.where()


def test_an_own_ca_bundle_is_kept():
    url = POOLED.replace("sslmode=require", "sslmode=verify-full") + "&sslrootcert=/etc/ca.pem"
    assert settings_for({"DATABASE_URL": url})["OPTIONS"]["sslrootcert"] == "/etc/ca.pem"


def test_weak_sslmode_in_the_environment_stops_django_with_the_reason():
    with pytest.raises(ImproperlyConfigured, match="sslmode=disable"):
        settings_for({"DATABASE_URL": POOLED.replace("require", "disable", 1)})


def test_pg_variables_are_read_when_database_url_is_unset():
    environ = {
        "PGHOST": "ep-a-1-pooler.us-east-2.aws.neon.tech",
        "PGUSER": "neondb_owner",
        "PGPASSWORD": HARD_PASSWORD,
        "PGDATABASE": "neondb",
    }
    app = settings_for(environ, use_pooler=True)
    command = settings_for(environ, use_pooler=False)
    assert (app["HOST"], app["PASSWORD"], app["PORT"]) == (environ["PGHOST"], HARD_PASSWORD, 5432)
    assert command["HOST"] == "ep-a-1.us-east-2.aws.neon.tech"
    environ["PGHOST_UNPOOLED"] = "ep-b-2.us-east-2.aws.neon.tech"
    with pytest.raises(
        ImproperlyConfigured, match="PGHOST_UNPOOLED is not the direct twin of PGHOST"
    ):
        settings_for(environ, use_pooler=False)


def test_pg_variables_carry_sslmode_and_channel_binding():
    environ = {"PGHOST": "ep-a-1-pooler.us-east-2.aws.neon.tech", "PGUSER": "u", "PGPASSWORD": "p"}
    assert "channel_binding" not in settings_for(environ)["OPTIONS"]
    environ.update(PGSSLMODE="verify-full", PGCHANNELBINDING="require")
    options = settings_for(environ)["OPTIONS"]
    assert (options["sslmode"], options["channel_binding"]) == ("verify-full", "require")
    with pytest.raises(ImproperlyConfigured, match="sslmode=disable"):
        settings_for({**environ, "PGSSLMODE": "disable"})


def test_database_url_wins_over_pg_variables():
    environ = {"DATABASE_URL": POOLED, "PGHOST": "elsewhere.example"}
    assert settings_for(environ)["HOST"].startswith("ep-cool-darkness")


def test_nothing_configured_leaves_django_without_a_database():
    assert neon.databases({}, application_name="myapp", use_pooler=True) == {
        "default": {"ENGINE": "config.no_database"}
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, 60),
        ({"DJANGO_CONN_MAX_AGE": "0"}, 0),
        ({"DJANGO_CONN_MAX_AGE": "300"}, 300),
        ({"DJANGO_CONN_MAX_AGE": "900", "NEON_SCALE_TO_ZERO_SECONDS": "900"}, 900),
        ({"DJANGO_CONN_MAX_AGE": "3600", "NEON_SCALE_TO_ZERO_SECONDS": "never"}, 3600),
    ],
)
def test_conn_max_age(environ, expected):
    assert neon.conn_max_age(environ) == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DJANGO_CONN_MAX_AGE": "301"}, "outlives the compute"),
        ({"DJANGO_CONN_MAX_AGE": "-1"}, "not a whole number"),
        ({"NEON_SCALE_TO_ZERO_SECONDS": "soon"}, "must be seconds"),
        ({"DJANGO_CONN_MAX_AGE": "²"}, "not a whole number"),
    ],
)
def test_conn_max_age_refuses_values_that_outlive_a_suspend(environ, message):
    with pytest.raises(neon.NeonConfigError, match=message):
        neon.conn_max_age(environ)


@pytest.mark.parametrize(("raw", "expected"), [("", 5), ("0", 0), ("2.5", 2.5), (" 60 ", 60)])
def test_connect_retry_seconds(raw, expected):
    assert neon.connect_retry_seconds({"NEON_CONNECT_RETRY_SECONDS": raw}) == expected


@pytest.mark.parametrize("raw", ["soon", "-1", "61", "nan", "inf"])
def test_connect_retry_seconds_refuses_what_is_not_a_short_wait(raw):
    with pytest.raises(neon.NeonConfigError, match=f"NEON_CONNECT_RETRY_SECONDS={raw} must be"):
        neon.connect_retry_seconds({"NEON_CONNECT_RETRY_SECONDS": raw})


def test_a_bad_retry_budget_stops_django_with_the_reason():
    with pytest.raises(ImproperlyConfigured, match="NEON_CONNECT_RETRY_SECONDS=x must be"):
        settings_for({"DATABASE_URL": POOLED, "NEON_CONNECT_RETRY_SECONDS": "x"})


def test_a_replica_url_adds_a_replica_alias_that_tests_mirror():
    replica = POOLED.replace("ep-cool-darkness", "ep-read-only")
    found = neon.databases(
        {"DATABASE_URL": POOLED, "DATABASE_REPLICA_URL": replica},
        application_name="myapp",
        use_pooler=True,
    )
    assert found["replica"]["HOST"] == "ep-read-only-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
    assert found["replica"]["TEST"] == {"MIRROR": "default"}
    assert found["replica"]["DISABLE_SERVER_SIDE_CURSORS"] is True
    # The primary answers while the replica is away: no waiting for it to come back, nor long
    # for it to answer (libpq's shortest connect_timeout), with or without Django's pool.
    assert found["replica"]["OPTIONS"]["connect_retry_seconds"] == 0
    assert found["replica"]["OPTIONS"]["connect_timeout"] == 2
    assert found["default"]["OPTIONS"]["connect_timeout"] == neon.CONNECT_TIMEOUT_SECONDS
    without = neon.databases({"DATABASE_URL": POOLED}, application_name="a", use_pooler=True)
    assert list(without) == ["default"]


@pytest.mark.parametrize("given", ["pooled", "direct"])
def test_requests_reach_the_replica_through_its_pooler_and_commands_directly(given):
    replica = POOLED.replace("ep-cool-darkness", "ep-read-only")
    replica = replica if given == "pooled" else neon.direct(replica)
    environ = {"DATABASE_URL": POOLED, "DATABASE_REPLICA_URL": replica}
    requests = neon.databases(environ, application_name="a", use_pooler=True)["replica"]
    commands = neon.databases(environ, application_name="a", use_pooler=False)["replica"]
    assert requests["HOST"] == "ep-read-only-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
    assert commands["HOST"] == "ep-read-only-a1b2c3d4.us-east-2.aws.neon.tech"


def test_the_replica_pool_keeps_no_connection_and_waits_briefly():
    environ = {"DATABASE_URL": POOLED, "DJANGO_DB_POOL": "true"}
    environ["DATABASE_REPLICA_URL"] = POOLED.replace("ep-cool-darkness", "ep-read-only")
    found = neon.databases(environ, application_name="a", use_pooler=True)
    pool = found["replica"]["OPTIONS"]["pool"]
    # A replica that is away costs a read this wait, not the primary's full timeout.
    assert (pool["min_size"], pool["timeout"]) == (0, 2)
    assert found["default"]["OPTIONS"]["pool"]["timeout"] == neon.CONNECT_TIMEOUT_SECONDS


def test_a_replica_url_that_is_not_postgres_is_refused_naming_the_variable():
    environ = {"DATABASE_URL": POOLED, "DATABASE_REPLICA_URL": "mysql://u:p@host/db"}
    with pytest.raises(ImproperlyConfigured, match="^DATABASE_REPLICA_URL must start with"):
        settings_for(environ)


@pytest.mark.parametrize("use_pooler", [True, False], ids=["requests", "commands"])
def test_a_replica_url_of_another_database_is_refused(use_pooler):
    # Neon's Connect dialog names neondb unless told otherwise; the app may use another one.
    app = POOLED.replace("/neondb?", "/shop?")
    environ = {"DATABASE_URL": app, "DATABASE_REPLICA_URL": POOLED.replace("cool", "read")}
    message = "^DATABASE_REPLICA_URL names the database neondb, the app's is shop: .* with /shop$"
    with pytest.raises(ImproperlyConfigured, match=message):
        settings_for(environ, use_pooler=use_pooler)


def test_the_pool_serves_requests_below_the_suspend_delay():
    environ = {"DATABASE_URL": POOLED, "DJANGO_DB_POOL": "true", "DJANGO_CONN_MAX_AGE": "60"}
    app = settings_for(environ, use_pooler=True)
    pool = app["OPTIONS"]["pool"]
    assert app["CONN_MAX_AGE"] == 0
    assert (pool["min_size"], pool["max_size"]) == (neon.POOL_MIN_SIZE, neon.POOL_MAX_SIZE)
    assert pool["max_lifetime"] < 300 and pool["max_idle"] < 300
    # Commands open one connection, without pool threads.
    assert "pool" not in settings_for(environ, use_pooler=False)["OPTIONS"]
    assert "pool" not in settings_for({"DATABASE_URL": POOLED}, use_pooler=True)["OPTIONS"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DJANGO_DB_POOL": "maybe"}, "^DJANGO_DB_POOL=maybe must be true or false"),
        ({"DJANGO_DB_POOL_MIN_SIZE": "two"}, "^DJANGO_DB_POOL_MIN_SIZE=two is not a whole number"),
        ({"DJANGO_DB_POOL_MAX_SIZE": "1.5"}, "^DJANGO_DB_POOL_MAX_SIZE=1.5 is not a whole number"),
        ({"DJANGO_DB_POOL_MAX_SIZE": "1"}, "^DJANGO_DB_POOL_MAX_SIZE=1 must be at least"),
        # A digit to str.isdigit(), not to int().
        ({"DJANGO_DB_POOL_MAX_SIZE": "²"}, "^DJANGO_DB_POOL_MAX_SIZE=² is not a whole number"),
        # Its pool would close idle connections after 0 s, spinning a CPU to do so.
        ({"NEON_SCALE_TO_ZERO_SECONDS": "0"}, "^NEON_SCALE_TO_ZERO_SECONDS=0 must be seconds"),
    ],
)
@pytest.mark.parametrize("use_pooler", [True, False], ids=["requests", "commands"])
def test_bad_pool_settings_are_refused_naming_the_variable(variables, message, use_pooler):
    # Commands refuse them too, so that `check` and the release phase stop before the server does.
    environ = {"DATABASE_URL": POOLED, "DJANGO_DB_POOL": "true", **variables}
    with pytest.raises(ImproperlyConfigured, match=message):
        settings_for(environ, use_pooler=use_pooler)


@pytest.mark.parametrize("use_pooler", [True, False], ids=["requests", "commands"])
def test_a_conn_max_age_left_in_env_is_not_used_with_the_pool(use_pooler):
    environ = {"DATABASE_URL": POOLED, "DJANGO_DB_POOL": "true", "DJANGO_CONN_MAX_AGE": "600"}
    assert settings_for(environ, use_pooler=use_pooler)["CONN_MAX_AGE"] == 0
