"""The counting proxy that the connection tests and bench/latency.py measure with."""

import time

import psycopg
import pytest

from counting_proxy import CountingProxy

pytestmark = pytest.mark.slow


def test_it_counts_each_request_and_answer_once_and_delays_both_ways(neon):
    delay = 0.02
    with CountingProxy(neon.pooler_port, delay) as proxy:
        url = proxy.routed(neon.pooled_url)
        started = time.monotonic()
        with psycopg.connect(f"{url}&gssencmode=disable", autocommit=True) as conn:
            connected = time.monotonic()
            # TCP, SSLRequest, TLS 1.3, and SCRAM's three legs; TLS and SCRAM each send their
            # messages in several packets, which count once.
            assert (proxy.connections, proxy.round_trips) == (1, 6)
            assert connected - started >= 6 * 2 * delay
            conn.execute("SELECT 1")
            conn.execute("SELECT 2")
            queried = time.monotonic()
            assert proxy.round_trips == 8
            assert queried - connected >= 2 * 2 * delay
        time.sleep(2 * delay)
        # Closing sends a goodbye that nobody answers: no round trip.
        assert proxy.round_trips == 8
        proxy.reset()
        assert (proxy.connections, proxy.round_trips) == (0, 0)


def test_a_closed_upstream_closes_the_client(neon):
    with CountingProxy(neon.pooler_port) as proxy:
        url = proxy.routed(neon.pooled_url)
        with (
            psycopg.connect(url, autocommit=True) as conn,
            neon.pooler_stopped(),
            pytest.raises(psycopg.OperationalError),
        ):
            conn.execute("SELECT 1")
