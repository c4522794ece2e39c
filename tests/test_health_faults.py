"""Nothing a load balancer calls can hang: /health/ and the home page of a baked project, served
by gunicorn, answer within the probe's budget in every fault the stand-in can stage.

Run these alone with `pytest -m faults`. Each fault test warms the worker's connection first,
stages the fault, times the answers, then undoes the fault and sees the app recover.
"""

import re
import socket
import time
from contextlib import ExitStack, contextmanager

import psycopg
import pytest

from served_project import get
from test_against_neon import gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.faults]

# gunicorn, Python and TLS on a busy 2-core machine, on top of the probe's own budget.
SLACK_SECONDS = 1.5


@pytest.fixture(scope="module")
def project(standin_project):
    """The Django 5.2 bake of test_against_neon.py (the same answers: one install for both)."""
    return standin_project("app_5_2", project_name="Standin 5.2", django_version="5.2")


@pytest.fixture
def served(project):
    with gunicorn(project) as base:
        assert get(f"{base}/health/")[0] == 200  # a warm connection to start from
        yield base


def timed(url):
    started = time.monotonic()
    status, body = get(url)
    return status, body, time.monotonic() - started


def assert_answers_in_time(base, budget):
    """/health/ says 503 and the home page says so, each within the budget."""
    status, _, seconds = timed(f"{base}/health/")
    assert (status, seconds < budget + SLACK_SECONDS) == (503, True), seconds
    status, page, seconds = timed(f"{base}/")
    assert status == 200 and "No database connection." in page
    assert seconds < budget + SLACK_SECONDS, seconds


def assert_recovers(base):
    deadline = time.monotonic() + 10  # PgBouncer retries a failed server login every second
    while get(f"{base}/health/")[0] != 200:
        assert time.monotonic() < deadline, "/health/ did not recover"
        time.sleep(0.2)


def test_pooler_stopped(served, neon, budget):
    with neon.pooler_stopped():
        assert_answers_in_time(served, budget)
    assert_recovers(served)


def test_pooler_frozen(served, neon, budget):
    neon.freeze_pooler()
    try:
        # The first answer cuts the kept connection; the second has to open one, and cannot.
        assert_answers_in_time(served, budget)
        assert_answers_in_time(served, budget)
    finally:
        neon.thaw_pooler()
    # The connection that timed out was closed, not handed to the next request.
    assert get(f"{served}/health/")[0] == 200


@contextmanager
def long_queries(url, count):
    """`count` clients through `url`, each running pg_sleep until the block ends."""
    sleepers = []
    try:
        for _ in range(count):
            sleepers.append(psycopg.connect(url, autocommit=True))
            sleepers[-1].pgconn.send_query(b"SELECT pg_sleep(60)")
            sleepers[-1].pgconn.flush()
        yield
    finally:
        for sleeper in sleepers:
            sleeper.cancel()
            sleeper.close()


def running_sleeps(direct_url):
    with psycopg.connect(direct_url, autocommit=True) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%'"
        return conn.execute(query).fetchone()[0]


def test_pooler_queue_full(served, project, neon, budget):
    ini = (neon.workdir / "pgbouncer.ini").read_text()
    pool_size = int(re.search(r"^default_pool_size = (\d+)", ini, re.MULTILINE)[1])
    urls = project.dotenv()
    with long_queries(urls["DATABASE_URL"], pool_size):
        deadline = time.monotonic() + 10
        while running_sleeps(urls["DATABASE_URL_UNPOOLED"]) < pool_size:
            assert time.monotonic() < deadline, "the long queries did not all start"
            time.sleep(0.1)
        # Every server connection is busy: the probe's query, then Django's session setup on a
        # new connection, wait in PgBouncer's queue.
        assert_answers_in_time(served, budget)
    assert_recovers(served)


def test_server_at_max_connections(served, project, neon, budget):
    neon.stop_pooler()  # PgBouncer's idle server connections would still serve the app
    neon.start_pooler()
    direct = project.dotenv()["DATABASE_URL_UNPOOLED"]
    with ExitStack() as hogs:
        while True:  # until the server refuses the role: only superuser slots are left
            try:
                hogs.enter_context(psycopg.connect(direct, autocommit=True))
            except psycopg.OperationalError as error:
                assert "reserved" in str(error) or "too many clients" in str(error), error
                break
        assert_answers_in_time(served, budget)
    assert_recovers(served)


def test_compute_that_accepts_tcp_and_never_answers(project, neon, budget):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nobody ever reads
        port = silent.getsockname()[1]
        url = project.dotenv()["DATABASE_URL"].replace(f":{neon.pooler_port}/", f":{port}/")
        with gunicorn(project, DATABASE_URL=url, DATABASE_URL_UNPOOLED="") as base:
            assert_answers_in_time(base, budget)


def test_a_warm_probe_sends_exactly_one_query(served, neon):
    """Counted by PgBouncer: Django's stock liveness check adds a SELECT 1 to every request."""
    before = neon.pooled_query_count("app_5_2")
    for _ in range(5):
        assert get(f"{served}/health/")[0] == 200
    assert neon.pooled_query_count("app_5_2") - before == 5
