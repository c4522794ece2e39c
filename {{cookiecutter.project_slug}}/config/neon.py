"""How this project reaches Neon.

Neon gives every compute two host names. The pooled one, `ep-…-pooler.<region>.aws.neon.tech`,
is PgBouncer in transaction mode: thousands of clients, but no session state between
transactions. The direct one, the same name without `-pooler`, is a real Postgres session.
Requests go through the pooler; migrations, tests and other commands need a session and use
the direct host. `databases()` turns the environment into Django's DATABASES accordingly.

All but `databases()` is standard library, so the template's hooks import this module too.
"""

import html
import json
import re
import shlex
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

POOLER_SUFFIX = "-pooler"
NEON_DOMAIN = ".neon.tech"
DEFAULT_PORT = 5432
# Neon suspends an idle compute after 5 minutes by default, cutting every connection.
SCALE_TO_ZERO_SECONDS = 300
WEAK_SSLMODES = {"disable", "allow", "prefer"}
SSLMODES = WEAK_SSLMODES | {"require", "verify-ca", "verify-full"}
# A cold compute takes a few hundred milliseconds to wake; leave room for a slow network.
CONNECT_TIMEOUT_SECONDS = 10
# While a compute wakes or restarts, new connections are refused or dropped for a moment.
CONNECT_RETRY_SECONDS = 5
# The variables that hold the pooled and the direct connection strings.
URL_VARIABLES = ("DATABASE_URL", "DATABASE_URL_UNPOOLED")
REPLICA = "replica"
# Django's pool (DJANGO_DB_POOL): connections it keeps at least, and at most.
POOL_MIN_SIZE, POOL_MAX_SIZE = 2, 10
# The pool closes a connection this share of the suspend delay after it opened, or after it idled
# that long: a suspend would cut it anyway, and the pool closes it first, on its own terms.
POOL_LIFETIME_SHARE = 0.8
# Without scale to zero, a pooled connection still lives an hour at most (psycopg's default).
POOL_LIFETIME_SECONDS = 3600
# A read waits this long at most for the replica, to connect or for its pool: while the replica
# is away or unresponsive, its reads go to the primary after this wait, not the full timeout.
REPLICA_WAIT_SECONDS = 2
# The replica's pool keeps no connection of its own. (Its name tells its lines in psycopg's log
# from the primary's pool.)
REPLICA_POOL = {"name": REPLICA, "min_size": 0, "timeout": REPLICA_WAIT_SECONDS}


class NeonConfigError(ValueError):
    """A setting this project cannot use; the message names it and says what to change."""


def check(url, name="DATABASE_URL"):
    """Return the URL as pasted() reads it, or raise NeonConfigError saying what is wrong."""
    url = pasted(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # Python reads [ or ] as an IPv6 address
        raise NeonConfigError(
            f"{name} has [ or ] in it: percent-encode them in the password ([ is %5B, ] is %5D)"
        ) from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise NeonConfigError(
            f"{name} must start with postgresql:// (copy it from Neon's Connect dialog)"
        )
    if parts.fragment:
        raise NeonConfigError(
            f"{name} contains '#': percent-encode special characters in the password (# is %23)"
        )
    if "," in parts.netloc.rpartition("@")[2]:
        raise NeonConfigError(
            f"{name} names several hosts; Neon gives one: paste a single connection string"
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
    if parts.hostname.endswith("."):
        raise NeonConfigError(
            f"{name} has a host ending in a dot: remove it (…neon.tech, not …neon.tech.)"
        )
    if is_neon(url) and not parts.password and "password" not in _parameters(url):
        raise NeonConfigError(
            f"{name} has no password: copy the whole string from Neon's Connect dialog"
        )
    repeated = repeated_parameters(url)
    if repeated:
        raise NeonConfigError(f"{name} gives {repeated[0]} more than once: keep one")
    sslmode = _parameters(url).get("sslmode", "require")
    if sslmode not in SSLMODES:
        raise NeonConfigError(
            f"{name} has sslmode={sslmode}, which libpq does not know: use sslmode=require"
        )
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
    return parts.hostname, parts.port or DEFAULT_PORT


def is_neon(url):
    return (urlsplit(url).hostname or "").endswith(NEON_DOMAIN)


def is_pooled(url):
    """True for a Neon pooler host: its endpoint label ends in -pooler."""
    endpoint = (urlsplit(url).hostname or "").split(".")[0]
    return endpoint.endswith(POOLER_SUFFIX)


def endpoint(host):
    """A Neon host's endpoint label, without -pooler: ep-cool-darkness-a1b2c3d4."""
    return (host or "").split(".")[0].removesuffix(POOLER_SUFFIX)


def direct(url):
    """The direct URL for a Neon pooled URL; any other URL unchanged."""
    if not is_neon(url) or not is_pooled(url):
        return url
    return _with_endpoint(url, endpoint(urlsplit(url).hostname))


def pooled(url):
    """The pooled URL for a Neon direct URL; any other URL unchanged."""
    if not is_neon(url) or is_pooled(url):
        return url
    return _with_endpoint(url, endpoint(urlsplit(url).hostname) + POOLER_SUFFIX)


def _with_endpoint(url, endpoint):
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    old_endpoint = hostport.split(".", 1)[0]
    netloc = f"{userinfo}{at}{endpoint}{hostport[len(old_endpoint) :]}"
    # Only the host changes: the user's percent-encoding and parameters stay exactly as typed.
    return urlunsplit(parts._replace(netloc=netloc))


def pasted(url):
    """The connection string in what a user pasted: Neon's dialog also offers it quoted, or as
    a `psql '…'` command line."""
    url = url.strip()
    if url.startswith("psql "):
        url = url.removeprefix("psql ").strip()
    if len(url) > 1 and url[0] == url[-1] and url[0] in "'\"":
        url = url[1:-1].strip()
    return url


def _parameters(url):
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def without_password(url):
    """The URL with no password in it (user-info or parameter), for anything saved outside .env."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    query = parts.query
    if "password" in _parameters(url):
        kept = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(key, value) for key, value in kept if key != "password"])
    return urlunsplit(parts._replace(netloc=f"{user}{at}{hostport}", query=query))


# The password part of a connection string, should a driver's message ever quote one.
PASSWORD_IN_URL = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@")


def masked(text):
    """The text's first line, with any password in a connection string masked."""
    return PASSWORD_IN_URL.sub(r"\1****@", (str(text).strip().splitlines() or [""])[0])


def describe(error):
    """The error's kind and first line, on one line and with any password masked."""
    return f"{type(error).__name__}: {masked(error)}"


def passwords(url):
    """The passwords a connection string carries: as written in it, and as the server gets them."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    written = userinfo.partition(":")[2]
    found = {written, unquote(written), _parameters(url).get("password", "")}
    return found - {""}


def password_forms(password):
    """Every way a password can be written out: as typed, in a URL, in JSON, Python, HTML,
    a shell or a libpq conninfo string; what has to be masked wherever text leaves a process."""
    plain = {
        password,
        quote(password, safe=""),
        quote(password),
        quote_plus(password),
        json.dumps(password)[1:-1],
        json.dumps(password, ensure_ascii=False)[1:-1],
        repr(password + '"')[1:-2],  # Python's repr inside '…', then inside "…"
        repr("'" + password)[2:-1] if '"' not in password else password,
        password.replace("\\", "\\\\").replace("'", "\\'"),  # libpq conninfo
        shlex.quote(password),
    }
    return {form for text in plain for form in (text, html.escape(text))} - {""}


PG_URL_PARAMETERS = (("PGSSLMODE", "sslmode"), ("PGCHANNELBINDING", "channel_binding"))


def url_from_pg_variables(environ, host_variable="PGHOST"):
    """The seed guide's PGHOST/PGUSER/… form as a URL, or "" when the host is unset."""
    host = environ.get(host_variable, "")
    if not host:
        return ""
    user = quote(environ.get("PGUSER", ""), safe="")
    password = quote(environ.get("PGPASSWORD", ""), safe="")
    port = environ.get("PGPORT", str(DEFAULT_PORT))
    database = quote(environ.get("PGDATABASE", "neondb"), safe="")
    # In the URL they are checked like a pasted string's, and the sslmode=require this module
    # sets when a URL names none no longer hides PGSSLMODE from libpq.
    parameters = urlencode(
        {name: environ[variable] for variable, name in PG_URL_PARAMETERS if environ.get(variable)}
    )
    url = f"postgresql://{user}:{password}@{host}:{port}/{database}"
    return f"{url}?{parameters}" if parameters else url


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
    return checked_urls(app, direct_url, app_name, direct_name)


def checked_urls(app, direct_url, app_name, direct_name):
    """(app URL, direct URL), both checked; an empty direct URL is derived from the app's."""
    app = check(app, app_name)
    if not direct_url:
        return app, direct(app)
    return app, check_direct(direct_url, app, direct_name, app_name)


def scale_to_zero_seconds(environ):
    """Seconds after which the compute suspends when idle, or None if it never does."""
    suspend = environ.get("NEON_SCALE_TO_ZERO_SECONDS", "").strip() or str(SCALE_TO_ZERO_SECONDS)
    if suspend == "never":
        return None
    # Not 0: no compute suspends at once (Neon's API writes 0 for its default of 300 s), and a
    # pool told to close idle connections after 0 s spins a CPU doing so.
    if not whole_number(suspend) or int(suspend) == 0:
        raise NeonConfigError(
            f"NEON_SCALE_TO_ZERO_SECONDS={suspend} must be seconds (at least 1), "
            "or 'never' if it is off"
        )
    return int(suspend)


def whole_number(text):
    """0-9 only: str.isdigit() also takes ² and other digits that int() refuses."""
    return text.isascii() and text.isdigit()


def conn_max_age(environ):
    """Seconds a connection is kept between requests: never past the compute's suspend time."""
    raw = environ.get("DJANGO_CONN_MAX_AGE", "").strip() or "60"
    if not whole_number(raw):
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


def replica_url(environ, use_pooler, app_url=""):
    """DATABASE_REPLICA_URL, checked, or "" when there is no read replica.

    As for the primary: requests use the replica's pooled host, commands its direct one. Its
    database is the app's (`app_url`'s).
    """
    url = environ.get("DATABASE_REPLICA_URL", "").strip()
    if not url:
        return ""
    url = check(url, "DATABASE_REPLICA_URL")
    replica_database, app_database = (unquote(urlsplit(u).path.strip("/")) for u in (url, app_url))
    if app_url and replica_database != app_database:
        # Its reads would all fail ("relation … does not exist"), or read another database.
        raise NeonConfigError(
            f"DATABASE_REPLICA_URL names the database {replica_database}, the app's is "
            f"{app_database}: a read replica serves the same databases, end it with "
            f"/{quote(app_database, safe='')}"
        )
    return pooled(url) if use_pooler else direct(url)


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
        if not whole_number(value):
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
    return _address(app_url)


def repeated_parameters(url):
    """Parameter names given more than once in a URL, like sslmode=require&sslmode=disable."""
    names = [name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    return sorted({name for name in names if names.count(name) > 1})


def databases(environ, *, application_name, use_pooler):
    """Django's DATABASES: the pooled URL when serving requests, otherwise the direct one.

    With DATABASE_REPLICA_URL, a second alias, "replica", that config/replica.py sends reads to.
    """
    from django.core.exceptions import ImproperlyConfigured

    try:
        app_url, direct_url = app_and_direct_urls(environ)
        # Read in every process, so that `check` and the release phase refuse a bad value too.
        pool = pool_options(environ)
        # The pool keeps the connections itself: a DJANGO_CONN_MAX_AGE left in .env is not used.
        max_age = 0 if pool else conn_max_age(environ)
        retry_seconds = connect_retry_seconds(environ)
        replica = replica_url(environ, use_pooler, app_url)
    except NeonConfigError as error:
        raise ImproperlyConfigured(str(error)) from None
    if not use_pooler:
        pool = None  # the pool serves requests; a command needs one connection, and no pool threads
    if not app_url:
        # Commands that need no database still run; the others say what to set.
        return {"default": {"ENGINE": "config.no_database"}}
    # Django's pool keeps the connections itself: Django must close (return) them at once.
    common = {"max_age": max_age, "pool": pool, "application_name": application_name}
    url = app_url if use_pooler else direct_url
    pooled = _address(url) != _address(direct_url)
    found = {"default": _database(url, pooled=pooled, retry_seconds=retry_seconds, **common)}
    if replica:
        pooled = host_kind(urlsplit(replica).hostname) != "direct"
        # No retry: while the replica wakes or is away, the primary answers its reads at once.
        common["pool"] = {**pool, **REPLICA_POOL} if pool else None
        found[REPLICA] = _database(
            replica, pooled=pooled, retry_seconds=0, wait=REPLICA_WAIT_SECONDS, **common
        )
        # Tests read what they wrote: no test database of its own, the replica mirrors default.
        found[REPLICA]["TEST"] = {"MIRROR": "default"}
    return found


def _database(
    url, *, pooled, max_age, retry_seconds, application_name, pool, wait=CONNECT_TIMEOUT_SECONDS
):
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
    options.setdefault("connect_timeout", wait)
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
