"""How this project reaches Neon.

Neon gives every compute two host names. The pooled one, `ep-…-pooler.<region>.aws.neon.tech`,
is PgBouncer in transaction mode: thousands of clients, but no session state between
transactions. The direct one, the same name without `-pooler`, is a real Postgres session.
Requests go through the pooler; migrations, tests and other commands need a session and use
the direct host. `databases()` turns the environment into Django's DATABASES accordingly.

All but `databases()` is standard library, so the template's hooks import this module too.
"""

from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

POOLER_SUFFIX = "-pooler"
NEON_DOMAIN = ".neon.tech"
# Neon suspends an idle compute after 5 minutes by default, cutting every connection.
SCALE_TO_ZERO_SECONDS = 300
WEAK_SSLMODES = {"disable", "allow", "prefer"}
# A cold compute takes a few hundred milliseconds to wake; leave room for a slow network.
CONNECT_TIMEOUT_SECONDS = 10
# While a compute wakes or restarts, new connections are refused or dropped for a moment.
CONNECT_RETRY_SECONDS = 5
REPLICA = "replica"
# Django's pool (DJANGO_DB_POOL): connections it keeps at least, and at most.
POOL_MIN_SIZE, POOL_MAX_SIZE = 2, 10
# The pool closes a connection this share of the suspend delay after it opened, or after it idled
# that long: a suspend would cut it anyway, and the pool closes it first, on its own terms.
POOL_LIFETIME_SHARE = 0.8
# Without scale to zero, a pooled connection still lives an hour at most (psycopg's default).
POOL_LIFETIME_SECONDS = 3600


class NeonConfigError(ValueError):
    """A setting this project cannot use; the message names it and says what to change."""


def check(url, name="DATABASE_URL"):
    """Return the URL without surrounding blanks, or raise NeonConfigError saying what is wrong."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise NeonConfigError(
            f"{name} must start with postgresql:// (copy it from Neon's Connect dialog)"
        )
    if parts.fragment:
        raise NeonConfigError(
            f"{name} contains '#': percent-encode special characters in the password (# is %23)"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise NeonConfigError(
            f"{name} has an invalid port, or a password with / or ? not percent-encoded "
            "(/ is %2F, ? is %3F)"
        )
    if not parts.hostname:
        raise NeonConfigError(f"{name} has no host: use postgresql://user:password@host/dbname")
    if not parts.path.strip("/"):
        raise NeonConfigError(f"{name} names no database: end it with /neondb or your database")
    sslmode = dict(parse_qsl(parts.query)).get("sslmode", "require")
    if sslmode in WEAK_SSLMODES:
        raise NeonConfigError(
            f"{name} asks for sslmode={sslmode}, but Neon needs TLS: use sslmode=require"
        )
    return url


def check_direct(url, app_url, name="DATABASE_URL_UNPOOLED", app_name="DATABASE_URL"):
    """check(), and make sure a Neon direct URL is the real-session twin of the app's URL.

    A mismatch would run migrations and tests on another branch or database than the app.
    """
    url = check(url, name)
    if not (is_neon(url) or is_neon(app_url)):
        return url
    if is_pooled(url):
        raise NeonConfigError(
            f"{name} points at Neon's pooler (-pooler in the host): use the direct "
            "connection string, or leave it empty to derive it"
        )
    if _identity(url) != _identity(direct(app_url)):
        raise NeonConfigError(
            f"{name} is not the direct twin of {app_name} (another endpoint, database or "
            "role): copy both from the same Neon branch, or leave it empty to derive it"
        )
    return url


def _identity(url):
    parts = urlsplit(url)
    return parts.hostname, parts.username, parts.path.strip("/")


def _address(url):
    parts = urlsplit(url)
    return parts.hostname, parts.port


def is_neon(url):
    return (urlsplit(url).hostname or "").endswith(NEON_DOMAIN)


def is_pooled(url):
    """True for a Neon pooler host: its endpoint label ends in -pooler."""
    endpoint = (urlsplit(url).hostname or "").split(".")[0]
    return endpoint.endswith(POOLER_SUFFIX)


def direct(url):
    """The direct URL for a Neon pooled URL; any other URL unchanged."""
    if not is_neon(url) or not is_pooled(url):
        return url
    endpoint = urlsplit(url).hostname.split(".")[0]
    return _with_endpoint(url, endpoint.removesuffix(POOLER_SUFFIX))


def pooled(url):
    """The pooled URL for a Neon direct URL; any other URL unchanged."""
    if not is_neon(url) or is_pooled(url):
        return url
    endpoint = urlsplit(url).hostname.split(".")[0]
    return _with_endpoint(url, endpoint + POOLER_SUFFIX)


def _with_endpoint(url, endpoint):
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    old_endpoint = hostport.split(".", 1)[0]
    netloc = f"{userinfo}{at}{endpoint}{hostport[len(old_endpoint) :]}"
    # Only the host changes: the user's percent-encoding and parameters stay exactly as typed.
    return urlunsplit(parts._replace(netloc=netloc))


def without_password(url):
    """The URL with no password in it, for anything saved outside .env."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}{at}{hostport}"))


def url_from_pg_variables(environ, host_variable="PGHOST"):
    """The seed guide's PGHOST/PGUSER/… form as a URL, or "" when the host is unset."""
    host = environ.get(host_variable, "")
    if not host:
        return ""
    user = quote(environ.get("PGUSER", ""), safe="")
    password = quote(environ.get("PGPASSWORD", ""), safe="")
    port = environ.get("PGPORT", "5432")
    database = quote(environ.get("PGDATABASE", "neondb"), safe="")
    return f"postgresql://{user}:{password}@{host}:{port}/{database}"


def app_and_direct_urls(environ):
    """(URL for requests, URL for migrations and commands); ("", "") when nothing is configured.

    DATABASE_URL wins over the PG* variables; a missing direct URL is derived from the other.
    """
    if environ.get("DATABASE_URL", "").strip():
        app_name, direct_name = "DATABASE_URL", "DATABASE_URL_UNPOOLED"
        app = environ["DATABASE_URL"]
        direct_url = environ.get("DATABASE_URL_UNPOOLED", "").strip()
    else:
        app_name, direct_name = "PGHOST", "PGHOST_UNPOOLED"
        app = url_from_pg_variables(environ)
        direct_url = url_from_pg_variables(environ, "PGHOST_UNPOOLED")
        if not app:
            return "", ""
    app = check(app, app_name)
    if not direct_url:
        return app, direct(app)
    return app, check_direct(direct_url, app, direct_name, app_name)


def scale_to_zero_seconds(environ):
    """Seconds after which the compute suspends when idle, or None if it never does."""
    suspend = environ.get("NEON_SCALE_TO_ZERO_SECONDS", "").strip() or str(SCALE_TO_ZERO_SECONDS)
    if suspend == "never":
        return None
    if not suspend.isdigit():
        raise NeonConfigError(
            f"NEON_SCALE_TO_ZERO_SECONDS={suspend} must be seconds, or 'never' if it is off"
        )
    return int(suspend)


def conn_max_age(environ):
    """Seconds a connection is kept between requests: never past the compute's suspend time."""
    raw = environ.get("DJANGO_CONN_MAX_AGE", "").strip() or "60"
    if not raw.isdigit():
        raise NeonConfigError(f"DJANGO_CONN_MAX_AGE={raw} is not a whole number of seconds")
    suspend = scale_to_zero_seconds(environ)
    if suspend is not None and int(raw) > suspend:
        raise NeonConfigError(
            f"DJANGO_CONN_MAX_AGE={raw} outlives the compute, which suspends after {suspend} s; "
            "lower it, or set NEON_SCALE_TO_ZERO_SECONDS to your compute's setting"
        )
    return int(raw)


def connect_retry_seconds(environ):
    """For how long a refused or dropped new connection is tried again (0: not at all)."""
    raw = environ.get("NEON_CONNECT_RETRY_SECONDS", "").strip() or str(CONNECT_RETRY_SECONDS)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= 60:
        raise NeonConfigError(
            f"NEON_CONNECT_RETRY_SECONDS={raw} must be seconds between 0 (no retry) and 60"
        )
    return seconds


def replica_url(environ):
    """DATABASE_REPLICA_URL, checked, or "" when there is no read replica."""
    url = environ.get("DATABASE_REPLICA_URL", "").strip()
    return check(url, "DATABASE_REPLICA_URL") if url else ""


def pool_options(environ):
    """OPTIONS["pool"] for Django's psycopg pool when DJANGO_DB_POOL is on, else None."""
    raw = environ.get("DJANGO_DB_POOL", "").strip().lower() or "false"
    if raw not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise NeonConfigError(f"DJANGO_DB_POOL={raw} must be true or false")
    if raw in ("false", "0", "no", "off"):
        return None
    sizes = {}
    for name, default in (("MIN_SIZE", POOL_MIN_SIZE), ("MAX_SIZE", POOL_MAX_SIZE)):
        value = environ.get(f"DJANGO_DB_POOL_{name}", "").strip() or str(default)
        if not value.isdigit():
            raise NeonConfigError(f"DJANGO_DB_POOL_{name}={value} is not a whole number")
        sizes[name.lower()] = int(value)
    if sizes["max_size"] < max(sizes["min_size"], 1):
        raise NeonConfigError(
            f"DJANGO_DB_POOL_MAX_SIZE={sizes['max_size']} must be at least 1 and at least "
            f"DJANGO_DB_POOL_MIN_SIZE={sizes['min_size']}"
        )
    suspend = scale_to_zero_seconds(environ)
    lifetime = POOL_LIFETIME_SECONDS if suspend is None else suspend * POOL_LIFETIME_SHARE
    return {
        **sizes,
        "max_lifetime": lifetime,
        "max_idle": lifetime,
        # How long a request waits for a free connection, as long as for a new one.
        "timeout": CONNECT_TIMEOUT_SECONDS,
    }


def host_kind(host):
    """The kind of a Neon host name, "pooled" or "direct"; "other" for any other host."""
    if not (host or "").endswith(NEON_DOMAIN):
        return "other"
    return "pooled" if host.split(".")[0].endswith(POOLER_SUFFIX) else "direct"


def pooler_address(environ):
    """(host, port) that requests reach Postgres through when it is a pooler, else None.

    The same rule as databases(): the app's URL is pooled when its address is not the direct one.
    """
    app_url, direct_url = app_and_direct_urls(environ)
    if not app_url or _address(app_url) == _address(direct_url):
        return None
    host, port = _address(app_url)
    return host, port or 5432


def repeated_parameters(url):
    """Parameter names given more than once in a URL, like sslmode=require&sslmode=disable."""
    names = [name for name, _ in parse_qsl(urlsplit(url).query)]
    return sorted({name for name in names if names.count(name) > 1})


def databases(environ, *, application_name, use_pooler):
    """Django's DATABASES: the pooled URL when serving requests, otherwise the direct one.

    With DATABASE_REPLICA_URL, a second alias, "replica", that config/replica.py sends reads to.
    """
    from django.core.exceptions import ImproperlyConfigured

    try:
        app_url, direct_url = app_and_direct_urls(environ)
        max_age = conn_max_age(environ)
        retry_seconds = connect_retry_seconds(environ)
        replica = replica_url(environ)
        # The pool serves requests; a command needs one connection, and no pool threads.
        pool = pool_options(environ) if use_pooler else None
    except NeonConfigError as error:
        raise ImproperlyConfigured(str(error)) from None
    if not app_url:
        # Commands that need no database still run; the others say what to set.
        return {"default": {"ENGINE": "config.no_database"}}
    # Django's pool keeps the connections itself: Django must close (return) them at once.
    common = {"max_age": 0 if pool else max_age, "pool": pool, "application_name": application_name}
    url = app_url if use_pooler else direct_url
    pooled = _address(url) != _address(direct_url)
    found = {"default": _database(url, pooled=pooled, retry_seconds=retry_seconds, **common)}
    if replica:
        pooled = host_kind(urlsplit(replica).hostname) != "direct"
        # No retry: while the replica wakes or is away, the primary answers its reads at once.
        found[REPLICA] = _database(replica, pooled=pooled, retry_seconds=0, **common)
        # Tests read what they wrote: no test database of its own, the replica mirrors default.
        found[REPLICA]["TEST"] = {"MIRROR": "default"}
    return found


def _database(url, *, pooled, max_age, retry_seconds, application_name, pool):
    """One alias of DATABASES."""
    import dj_database_url

    database = dj_database_url.parse(
        url,
        conn_max_age=max_age,
        # A suspended compute has cut the connection we kept; test it before reuse. (The backend
        # tests what it takes from Django's pool itself, without the pool's query.)
        conn_health_checks=not pool,
        # Server-side cursors are WITH HOLD cursors, which a transaction-mode pooler loses.
        disable_server_side_cursors=pooled,
    )
    # Django's backend, made to check kept connections without a query (see neon_backend/).
    database["ENGINE"] = "config.neon_backend"
    options = database.setdefault("OPTIONS", {})
    if pool:
        options.setdefault("pool", dict(pool))
    options.setdefault("sslmode", "require")
    options.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    options.setdefault("application_name", application_name)
    options.setdefault("connect_retry_seconds", retry_seconds)
    # A peer that vanishes without closing (a dead host, a forgotten NAT entry) shows up after
    # 10 s of silence and 3 unanswered probes 5 s apart, not after the system's two hours.
    options.setdefault("keepalives", 1)
    options.setdefault("keepalives_idle", 10)
    options.setdefault("keepalives_interval", 5)
    options.setdefault("keepalives_count", 3)
    # Neon has no Kerberos; with a ticket on the machine libpq would first ask for GSSAPI
    # encryption, one round trip for nothing.
    options.setdefault("gssencmode", "disable")
    verifying = options["sslmode"] in ("verify-ca", "verify-full")
    if verifying and options.get("sslrootcert", "system") == "system":
        # psycopg's binary wheel has no system CA store; Neon's chain ends at ISRG Root X1.
        import certifi

        options["sslrootcert"] = certifi.where()
    return database
