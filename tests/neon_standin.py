"""A local stand-in for Neon serverless Postgres, for testing baked projects.

Starts a throwaway PostgreSQL cluster and a PgBouncer in front of it, from the
machine's own binaries, shaped like a Neon branch: TLS only, SCRAM passwords,
database ``neondb`` owned by ``neondb_owner`` (whose password is full of URL and
shell metacharacters) and a transaction-mode "pooler" endpoint. Clients use
Neon-style host names plus libpq's ``hostaddr=127.0.0.1``, so no traffic leaves
the loopback interface.

Plain Python (stdlib + psycopg), usable from a conftest or a script::

    standin = start()
    ...  # standin.direct_url, standin.pooled_url
    standin.stop()
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

ENDPOINT_ID = "ep-standin-a1b2c3d4"
DIRECT_HOST = f"{ENDPOINT_ID}.us-east-2.aws.neon.tech"
POOLER_HOST = f"{ENDPOINT_ID}-pooler.us-east-2.aws.neon.tech"
# A Neon read replica is an endpoint of its own, with its own pooler.
REPLICA_ENDPOINT_ID = "ep-standin-replica-e5f6a7b8"
REPLICA_DIRECT_HOST = f"{REPLICA_ENDPOINT_ID}.us-east-2.aws.neon.tech"
REPLICA_POOLER_HOST = f"{REPLICA_ENDPOINT_ID}-pooler.us-east-2.aws.neon.tech"
DATABASE = "neondb"
ROLE = "neondb_owner"
# Every character that breaks naive URL, shell or config-file handling.
PASSWORD_PREFIX = "p@ss:w/rd?#%&'\"$\\ x"
# initdb, postgres and PgBouncer all refuse to run as root: as root, we run
# them as this OS user.
SERVICE_USER = "postgres"
# The harness's superuser role, reachable only over the workdir's unix socket.
ADMIN_USER = "postgres"

SERVER_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{workdir}'
ssl = on
ssl_cert_file = '{workdir}/server.crt'
ssl_key_file = '{workdir}/server.key'
password_encryption = 'scram-sha-256'
max_connections = 100
shared_buffers = 16MB
# A throwaway cluster: durability only costs time.
fsync = off
synchronous_commit = off
full_page_writes = off
"""

# Appended to the copy of the primary's settings that pg_basebackup brings along.
REPLICA_SETTINGS = """
port = {port}
unix_socket_directories = '{workdir}'
ssl_cert_file = '{workdir}/server.crt'
ssl_key_file = '{workdir}/server.key'
hot_standby = on
"""

# The admin channel is the unix socket inside the private (0700) workdir; every
# TCP client must use TLS and SCRAM, as on Neon.
PG_HBA = """\
local     all  postgres                 trust
local     replication  postgres         trust
hostssl   all  all       127.0.0.1/32   scram-sha-256
hostnossl all  all       0.0.0.0/0      reject
hostnossl all  all       ::/0           reject
"""

PGBOUNCER_INI = """\
[databases]
; Any database name, so Django's test_neondb works through the pooler too.
* = host=127.0.0.1 port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {pooler_port}
unix_socket_dir =
pool_mode = transaction
max_client_conn = 200
default_pool_size = 10
auth_type = scram-sha-256
auth_file = {workdir}/userlist.txt
; Neon forwards only the parameters PgBouncer tracks; JDBC-style clients send this one.
ignore_startup_parameters = extra_float_digits
client_tls_sslmode = require
client_tls_cert_file = {workdir}/server.crt
client_tls_key_file = {workdir}/server.key
server_tls_sslmode = require
; Recover within a second after restart_server() instead of the default 15 s.
server_login_retry = 1
; Lets tests read SHOW STATS (queries per database) on the admin console.
stats_users = {role}
"""


class StandInUnavailable(RuntimeError):
    """Binaries missing or the server could not start; message says what to install."""


@dataclass
class NeonStandIn:
    direct_url: str
    pooled_url: str
    password: str  # the raw password
    workdir: Path
    root_cert: Path  # self-signed; valid for both host names (sslmode=verify-full)
    server_port: int
    pooler_port: int
    _bindir: Path = field(repr=False)
    _pgbouncer: str = field(repr=False)
    _pooler: subprocess.Popen | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def stop_pooler(self) -> None:
        """PgBouncer down: the pooled port refuses connections."""
        if self._pooler is None:
            return
        self._pooler.send_signal(signal.SIGTERM)  # immediate shutdown in 1.18
        try:
            self._pooler.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._pooler.kill()
            self._pooler.wait()
        self._pooler = None

    def start_pooler(self) -> None:
        """PgBouncer up; returns once it accepts TCP connections."""
        if self._pooler is not None:
            return
        with open(self.workdir / "pgbouncer.log", "ab") as log:
            self._pooler = subprocess.Popen(
                [self._pgbouncer, str(self.workdir / "pgbouncer.ini")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **_service_user_kwargs(self.workdir),
            )
        deadline = time.monotonic() + 10
        while not _accepts(self.pooler_port):
            if self._pooler.poll() is not None or time.monotonic() > deadline:
                self.stop_pooler()
                raise StandInUnavailable(
                    "PgBouncer did not start; its log ends with:\n"
                    + _tail(self.workdir / "pgbouncer.log")
                )
            time.sleep(0.05)

    def freeze_pooler(self) -> None:
        """SIGSTOP PgBouncer: the kernel still accepts TCP connections, nothing ever answers."""
        if self._pooler is not None:
            self._pooler.send_signal(signal.SIGSTOP)

    def thaw_pooler(self) -> None:
        """SIGCONT PgBouncer after freeze_pooler()."""
        if self._pooler is not None:
            self._pooler.send_signal(signal.SIGCONT)

    @contextmanager
    def pooler_stopped(self):
        """PgBouncer down for the time of a `with`: connecting through it is refused."""
        self.stop_pooler()
        try:
            yield
        finally:
            self.start_pooler()

    @contextmanager
    def replay_paused(self):
        """On a replica: replication lag for the time of a `with` (it receives, applies nothing)."""
        with self._admin() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            with self._admin() as conn:
                conn.execute("SELECT pg_wal_replay_resume()")

    def suspend(self) -> None:
        """Cut every client connection, direct or pooled, as a scale-to-zero does."""
        self.stop_pooler()
        with self._admin() as conn:
            # The timeout makes each call wait until that backend has exited.
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        self.start_pooler()

    def start_replica(self) -> NeonStandIn:
        """A read replica: a hot standby streaming from this server, behind its own PgBouncer.

        The same class, so the pooler and suspend controls work on it too; stop it before this.
        """
        replica = _new_standin(
            _new_workdir(self.workdir.parent),
            self.password,
            (REPLICA_DIRECT_HOST, REPLICA_POOLER_HOST),
            self._bindir,
            self._pgbouncer,
        )
        return _started(replica, lambda: _set_up_replica(replica, self), "Neon stand-in replica")

    def restart_server(self) -> None:
        """pg_ctl restart -m fast; returns once the server accepts connections."""
        self._pg_ctl("restart", "-m", "fast")

    def create_database(self, name: str) -> tuple[str, str]:
        """A fresh, empty database owned by the role (dropped first if it exists), as Django's
        test runner would make one: its (pooled, direct) URLs."""
        with self._admin() as conn:
            database = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(database, sql.Identifier(ROLE))
            )
        path = f"/{DATABASE}?"
        return (
            self.pooled_url.replace(path, f"/{name}?"),
            self.direct_url.replace(path, f"/{name}?"),
        )

    def backend_count(self, application_name: str | None = None) -> int:
        """Client backends on the server (the caller's admin session excluded)."""
        with self._admin() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " AND (%(name)s::text IS NULL OR application_name = %(name)s)",
                {"name": application_name},
            ).fetchone()
        return row[0]

    def pooled_query_count(self, database: str) -> int:
        """Queries clients have sent through PgBouncer to `database`, as its SHOW STATS counts."""
        admin_url = self.pooled_url.replace(f"/{DATABASE}?", "/pgbouncer?")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            # The admin console speaks only the simple query protocol: a client-side cursor.
            cursor = psycopg.ClientCursor(conn).execute("SHOW STATS")
            column = [description.name for description in cursor.description]
            rows = {row[0]: row for row in cursor.fetchall()}
        return int(rows[database][column.index("total_query_count")]) if database in rows else 0

    def stop(self) -> None:
        """Shut both down and remove the workdir; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            self.stop_pooler()
            if (self.workdir / "data" / "postmaster.pid").exists():
                try:
                    self._pg_ctl("stop", "-m", "fast")
                except StandInUnavailable:  # fast shutdown timed out: skip the checkpoint
                    self._pg_ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _admin(self) -> psycopg.Connection:
        # Explicit values so that PG* variables in the environment cannot
        # redirect the harness (an empty hostaddr counts as unset).
        return psycopg.connect(
            host=str(self.workdir),
            hostaddr="",
            port=self.server_port,
            user=ADMIN_USER,
            dbname="postgres",
            sslmode="disable",
            channel_binding="disable",
            connect_timeout=5,
            autocommit=True,
        )

    def _pg_ctl(self, *args: str) -> None:
        log = self.workdir / "postgres.log"
        data = self.workdir / "data"
        # -l on every call: otherwise the postmaster keeps our stdout pipe open.
        pg_ctl = [str(self._bindir / "pg_ctl"), "-D", str(data), "-l", str(log)]
        _run([*pg_ctl, "-w", "-t", "30", *args], self.workdir, log)


def start(base_dir: Path | None = None) -> NeonStandIn:
    """Start the stand-in, or raise StandInUnavailable saying what is missing."""
    bindir, pgbouncer, openssl = _find_binaries()
    workdir = _new_workdir(base_dir or Path("/tmp"))
    password = PASSWORD_PREFIX + os.urandom(4).hex()
    standin = _new_standin(workdir, password, (DIRECT_HOST, POOLER_HOST), bindir, pgbouncer)
    return _started(standin, lambda: _set_up(standin, openssl), "Neon stand-in")


def _started(standin: NeonStandIn, set_up, what: str) -> NeonStandIn:
    """`standin` once set_up() has started it; on failure, what it started is stopped."""
    atexit.register(standin.stop)
    try:
        set_up()
    except Exception as exc:
        standin.stop()
        if isinstance(exc, StandInUnavailable):
            raise
        raise StandInUnavailable(f"{what} failed to start: {exc}") from exc
    return standin


def _new_standin(
    workdir: Path, password: str, hosts: tuple[str, str], bindir: Path, pgbouncer: str
) -> NeonStandIn:
    """The description of a server and its pooler in `workdir`, on free ports; nothing started."""
    direct_host, pooler_host = hosts
    server_port = _free_port()
    pooler_port = _free_port(avoid=server_port)
    user = f"{ROLE}:{quote(password, safe='')}"
    return NeonStandIn(
        direct_url=f"postgresql://{user}@{direct_host}:{server_port}/{DATABASE}"
        "?sslmode=require&channel_binding=require&hostaddr=127.0.0.1",
        # PgBouncer cannot do SCRAM channel binding, hence no channel_binding here.
        pooled_url=f"postgresql://{user}@{pooler_host}:{pooler_port}/{DATABASE}"
        "?sslmode=require&hostaddr=127.0.0.1",
        password=password,
        workdir=workdir,
        root_cert=workdir / "server.crt",
        server_port=server_port,
        pooler_port=pooler_port,
        _bindir=bindir,
        _pgbouncer=pgbouncer,
    )


def _start_pooler(standin: NeonStandIn) -> None:
    """Configure PgBouncer in front of the stand-in's server, and start it."""
    _write_private(
        standin.workdir / "pgbouncer.ini",
        PGBOUNCER_INI.format(
            workdir=standin.workdir,
            server_port=standin.server_port,
            pooler_port=standin.pooler_port,
            role=ROLE,
        ),
    )
    standin.start_pooler()


def _set_up_replica(replica: NeonStandIn, primary: NeonStandIn) -> None:
    workdir = replica.workdir
    for name in ("server.crt", "server.key", "userlist.txt"):
        _write_private(workdir / name, (primary.workdir / name).read_text())
    # -R: starts as a standby of the primary, streaming over its admin socket.
    _run(
        [str(primary._bindir / "pg_basebackup"), "-D", "data", "-R", "-X", "stream",
         "-c", "fast", "--no-sync", "-h", str(primary.workdir),
         "-p", str(primary.server_port), "-U", ADMIN_USER],
        workdir,
    )  # fmt: skip
    with open(workdir / "data" / "postgresql.conf", "a") as conf:
        conf.write(REPLICA_SETTINGS.format(port=replica.server_port, workdir=workdir))
    replica._pg_ctl("start")
    _start_pooler(replica)


def _new_workdir(base_dir: Path) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="neon-standin-", dir=base_dir))
    if len(str(workdir)) > 80:  # unix socket paths are limited to ~107 bytes
        shutil.rmtree(workdir)
        raise StandInUnavailable(f"base_dir too long for a unix socket: {workdir}")
    _chown_to_service_user(workdir)
    if not _reachable_by_service_user(workdir):
        shutil.rmtree(workdir)
        raise StandInUnavailable(
            f"user '{SERVICE_USER}' cannot reach {workdir} (pytest's tmp_path dirs"
            " are private to root): call start() without base_dir or use one in /tmp"
        )
    return workdir


def _set_up(standin: NeonStandIn, openssl: str) -> None:
    workdir = standin.workdir
    _run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7",
         "-keyout", "server.key", "-out", "server.crt", "-subj", "/CN=neon-standin",
         "-addext", f"subjectAltName=DNS:{DIRECT_HOST},DNS:{POOLER_HOST},"
         f"DNS:{REPLICA_DIRECT_HOST},DNS:{REPLICA_POOLER_HOST}"],
        workdir,
    )  # fmt: skip
    (workdir / "server.key").chmod(0o600)  # postgres refuses a readable key
    _run(
        [str(standin._bindir / "initdb"), "-D", "data", "-U", ADMIN_USER,
         "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        workdir,
    )  # fmt: skip
    data = workdir / "data"
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(SERVER_SETTINGS.format(port=standin.server_port, workdir=workdir))
    (data / "pg_hba.conf").write_text(PG_HBA)
    standin._pg_ctl("start")

    with standin._admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(standin.password)
            )
        )
        conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        # The server's own SCRAM secret, not the password: no quoting pitfalls in
        # the auth_file, and PgBouncer reuses the client's SCRAM proof to log in
        # to the server (that only works when both hold the same secret).
        (secret,) = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [ROLE]
        ).fetchone()
    _write_private(workdir / "userlist.txt", f'"{ROLE}" "{secret}"\n')
    _start_pooler(standin)


def _find_binaries() -> tuple[Path, str, str]:
    bindirs = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if pg_config := shutil.which("pg_config"):
        reported = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True
        ).stdout.strip()
        bindirs.append(Path(reported))  # preferred when it has the server
    bindir = next((d for d in reversed(bindirs) if (d / "initdb").exists()), None)
    if bindir is None:
        raise StandInUnavailable(
            "PostgreSQL server (initdb) not found: apt-get install -y postgresql"
        )
    pgbouncer = shutil.which("pgbouncer") or shutil.which(
        "pgbouncer", path="/usr/sbin:/usr/local/sbin"
    )
    if pgbouncer is None:
        raise StandInUnavailable("PgBouncer not found: apt-get install -y pgbouncer")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise StandInUnavailable("openssl not found: apt-get install -y openssl")
    if os.geteuid() == 0:
        _service_account()  # fail early when root has nobody to run the servers as
    return bindir, pgbouncer, openssl


def _service_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise StandInUnavailable(
            f"running as root needs a '{SERVICE_USER}' OS user for initdb and"
            " PgBouncer: apt-get install -y postgresql"
        ) from None


def _service_user_kwargs(cwd: Path) -> dict:
    """subprocess arguments that run a server binary, as postgres when we are root."""
    # PG* variables (PGDATA, PGPORT, ...) meant for the projects under test must
    # not steer initdb or pg_ctl.
    kwargs = {"cwd": cwd, "env": {k: v for k, v in os.environ.items() if k[:2] != "PG"}}
    if os.geteuid() == 0:
        account = _service_account()
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        kwargs["env"]["HOME"] = account.pw_dir
    return kwargs


def _chown_to_service_user(path: Path) -> None:
    if os.geteuid() == 0:
        account = _service_account()
        os.chown(path, account.pw_uid, account.pw_gid)


def _reachable_by_service_user(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    # Absolute path from "/": every parent directory must let the user through.
    probe = subprocess.run(["test", "-w", str(path)], **_service_user_kwargs(Path("/")))
    return probe.returncode == 0


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)
    _chown_to_service_user(path)


def _run(args: list[str], cwd: Path, log: Path | None = None) -> None:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=60, **_service_user_kwargs(cwd)
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-10:]
        details = "\n".join(output) + ("\n" + _tail(log) if log else "")
        raise StandInUnavailable(
            f"{Path(args[0]).name} failed; output and log end with:\n{details}"
        )


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {log.name})"


def _free_port(avoid: int = 0) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != avoid:
            return port


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
