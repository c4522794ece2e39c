"""Django's connection pool (DJANGO_DB_POOL), under gunicorn and under uvicorn (ASGI, where it is
on by default), against the Neon stand-in.

Round trips are counted on the wire by a proxy between the app and the pooler.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from counting_proxy import CountingProxy
from served_project import ONE_QUERY_ASYNC_PATH, ONE_QUERY_PATH, get, one_query_settings, serve
from test_health_faults import assert_recovers
from test_neon_backend import PROXY_DELAY, pooled_env

pytestmark = pytest.mark.slow

SERVERS = [
    pytest.param({"asgi": True}, ONE_QUERY_ASYNC_PATH, id="uvicorn-async-view"),
    pytest.param({"asgi": True}, ONE_QUERY_PATH, id="uvicorn-sync-view"),
    # gunicorn: the pool on by choice; threads share it.
    pytest.param({"threads": 8, "DJANGO_DB_POOL": "true"}, ONE_QUERY_PATH, id="gunicorn-threads"),
]


@contextmanager
def served_through_proxy(project, neon, env, asgi=False, threads=1):
    """(proxy, base URL): the one-query project served with `env`, its pooled URL via the proxy.

    Leaving it fails if the server does not stop in time: a pool's threads can hold a worker.
    """
    with (
        CountingProxy(neon.pooler_port, PROXY_DELAY) as proxy,
        one_query_settings(project.project, "one_query_settings") as settings,
        serve(
            project.project,
            pooled_env(project, proxy, DJANGO_SETTINGS_MODULE=settings, **env),
            threads=threads,
            asgi=asgi,
        ) as base,
    ):
        yield proxy, base


@pytest.mark.parametrize(("server", "path"), SERVERS)
def test_the_pool_keeps_connections_warm_and_survives_suspends(project, neon, server, path):
    env = dict(server)
    serving = {key: env.pop(key) for key in ("asgi", "threads") if key in env}
    with served_through_proxy(project, neon, env, **serving) as (proxy, base):
        assert get(base + path) == (200, "1")
        # The pool opened its DJANGO_DB_POOL_MIN_SIZE connections (and one more for the request
        # that had to wait for them); from now on a request borrows one and returns it.
        assert 1 <= proxy.connections <= 3

        proxy.reset()
        for _ in range(20):
            assert get(base + path) == (200, "1")
        # Taking a connection from the pool checked it without a query: one round trip each.
        assert (proxy.connections, proxy.round_trips) == (0, 20)

        # Eight at once: the pool grows to about eight connections, all of which a suspend cuts.
        with ThreadPoolExecutor(8) as clients:
            assert set(clients.map(get, [base + path] * 64)) == {(200, "1")}
        failures = []
        for number in range(1, 31):
            status, body = get(base + path)
            if status != 200:
                failures.append((number, status, body[:200]))
            if number % 10 == 0:
                neon.suspend()  # cuts every pooled connection
        assert failures == []


def test_pooled_connections_are_replaced_before_the_compute_would_cut_them(project, neon):
    # A 2 s suspend delay: connections live 1.6 s (config/neon.py's share of it).
    env = {"NEON_SCALE_TO_ZERO_SECONDS": "2", "DJANGO_CONN_MAX_AGE": "0"}
    with served_through_proxy(project, neon, env, asgi=True) as (proxy, base):
        assert get(base + ONE_QUERY_PATH) == (200, "1")
        proxy.reset()
        assert get(base + ONE_QUERY_PATH) == (200, "1")
        assert proxy.connections == 0
        time.sleep(2.5)
        assert get(base + ONE_QUERY_PATH) == (200, "1")
        # The connection came back older than max_lifetime: the pool closed it and opens another.
        deadline = time.monotonic() + 5
        while proxy.connections == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.connections >= 1


def test_health_keeps_its_budget_with_the_pool_and_the_pooler_down(project, neon, budget):
    # Django's pool waits 10 s for a connection; /health/ promises an answer within its budget.
    with serve(project.project, project.env(DJANGO_DB_POOL="true"), threads=4) as base:
        assert get(base + "/health/")[0] == 200
        with neon.pooler_stopped():
            started = time.monotonic()
            status = get(base + "/health/")[0]
            seconds = time.monotonic() - started
        assert status == 503 and seconds < budget + 1
        # The pool reconnects in the background, backing off from 1 s between failed attempts.
        assert_recovers(base)
