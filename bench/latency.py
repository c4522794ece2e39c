"""What a one-query request costs, by how the app keeps its database connection.

    uv run python bench/latency.py [--rounds 10] [--requests 20] [--delay-ms 10] [--plot PATH]

Bakes the default project, starts the Neon stand-in, puts a proxy that adds `--delay-ms` each way
and counts round trips between the app and the pooler (tests/counting_proxy.py), and serves a
view running `SELECT 1` with gunicorn (one worker, 8 threads) or uvicorn (ASGI, one process) in
nine configurations:

  (a) default     the baked default: config.neon_backend, CONN_MAX_AGE=60, CONN_HEALTH_CHECKS
  (b) naive       the seed guide's conservative advice: Django's backend, CONN_MAX_AGE=0
  (c) stock       Django's backend, CONN_MAX_AGE=60 + CONN_HEALTH_CHECKS (SELECT 1 per request)
  (d) limit       a kept connection that is never checked
  (e) asgi-async  uvicorn, asgi.py as baked (Django's pool), an async view
  (f) asgi-sync   uvicorn, asgi.py as baked (Django's pool), the sync view
  (g) pool        gunicorn with Django's pool (DJANGO_DB_POOL=true) instead of CONN_MAX_AGE
  (h) django-asgi-async, (i) django-asgi-sync   as (e) and (f), with Django's own ASGIHandler
                  instead of asgi.py's handler (what the handler is measured against)

Round 0 warms every configuration up until 8 clients at once open no new connection (Django's
pool grows one connection at a time). Each round runs every configuration in turn (interleaved,
so that a busy moment of the machine hits them all): `--requests` requests one at a time, then
about twice as many from 8 clients at once. Kept connections live for 300 s
(DJANGO_CONN_MAX_AGE, the most the settings allow) rather than the default 60, so that they
outlive the bench and it measures the steady state; the table counts the connections opened.
After the rounds, (a) and (d) answer 30 requests with a compute suspend every 10, and so do (e),
(f) and (g).
Prints a table, writes a plot, and ends with
`RESULT ratio_naive_over_default=<b/a> default_over_limit=<a/d> asgi_async_over_default_c8=<e/a>
asgi_sync_over_default_c8=<f/a> pool_over_default_c8=<g/a> django_asgi_async_over_default_c8=<h/a>
django_asgi_sync_over_default_c8=<i/a>` (medians; one client for the first two, eight for the
others).
Goals: default_over_limit ≤ 1.05, ratio_naive_over_default ≥ 4, one round trip per query for
(a), the ASGI and pool ratios ≤ 1.1, no failed request for (a), (e), (f), (g) across suspends.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(TEMPLATE / "tests"), str(TEMPLATE / "hooks")]

import build  # noqa: E402  (the environment the bake hook gives the project's processes)
import neon_standin  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from served_project import (  # noqa: E402
    ONE_QUERY_ASYNC_PATH,
    ONE_QUERY_PATH,
    get,
    one_query_settings,
    serve,
)

COOKIECUTTER = Path(sys.executable).parent / "cookiecutter"
STOCK = 'DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"\n'
NOT_LIBPQS = 'DATABASES["default"]["OPTIONS"].pop("connect_retry_seconds")\n'
CONFIGURATIONS = {
    "a": ("default", ""),
    "b": ("naive", STOCK + NOT_LIBPQS + 'DATABASES["default"]["CONN_MAX_AGE"] = 0\n'),
    "c": ("stock", STOCK + NOT_LIBPQS),
    "d": ("limit", 'DATABASES["default"]["CONN_HEALTH_CHECKS"] = False\n'),
    "e": ("asgi-async", ""),
    "f": ("asgi-sync", ""),
    "g": ("pool", ""),
    "h": ("django-asgi-async", ""),
    "i": ("django-asgi-sync", ""),
}
# How a configuration is served, where it is not gunicorn with CLIENTS threads and the sync view.
SERVED = {
    "e": {"asgi": True, "path": ONE_QUERY_ASYNC_PATH},
    "f": {"asgi": True},
    "g": {"env": {"DJANGO_DB_POOL": "true"}},
    "h": {"asgi": True, "path": ONE_QUERY_ASYNC_PATH, "app": "config.django_asgi:application"},
    "i": {"asgi": True, "app": "config.django_asgi:application"},
}
# asgi.py's settings (Django's pool, CONN_MAX_AGE=0), served by Django's own handler.
DJANGO_ASGI = """\
import config.asgi  # noqa: F401
from django.core.handlers.asgi import ASGIHandler

application = ASGIHandler()
"""
SURVIVORS = "adefg"  # the configurations asked to answer across suspends
CLIENTS = 8
SUSPEND_REQUESTS, SUSPEND_EVERY = 30, 10


def bake(workdir, standin):
    # A private cookiecutter config: the user's replay files stay untouched.
    config = Path(workdir) / "cookiecutter.yaml"
    config.write_text(f"replay_dir: {workdir}/replay\ncookiecutters_dir: {workdir}/cc\n")
    subprocess.run(
        [COOKIECUTTER, "--no-input", TEMPLATE, "-o", workdir,
         f"database_url={standin.pooled_url}", f"database_url_unpooled={standin.direct_url}",
         "project_name=Latency", "git_init=no"],
        check=True, capture_output=True, env=build.clean_env(COOKIECUTTER_CONFIG=str(config)),
    )  # fmt: skip
    return Path(workdir) / "latency"


def timed_requests(url, count):
    """Seconds per request, and how many failed."""
    seconds, failed = [], 0
    for _ in range(count):
        started = time.perf_counter()
        status, _ = get(url)
        seconds.append(time.perf_counter() - started)
        failed += status != 200
    return seconds, failed


def measure(url, proxy, requests, clients):
    """(latencies, wall seconds, round trips, new connections, failures) for `requests` from
    `clients` at once."""
    proxy.reset()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(timed_requests, [url] * clients, [requests // clients] * clients))
    wall = time.perf_counter() - started
    latencies = [second for seconds, _ in results for second in seconds]
    failed = sum(failed for _, failed in results)
    return latencies, wall, proxy.round_trips, proxy.connections, failed


def warm_up(url, proxy, requests, most=10):
    """Requests from CLIENTS at once until they open no connection: Django's pool grows one
    connection at a time while requests wait for one, a thread keeps its own from the first."""
    for _ in range(most):
        if measure(url, proxy, requests, CLIENTS)[3] == 0:
            return


def summary(phases):
    """One row of the table from the phases of one configuration and concurrency."""
    latencies = [seconds for phase in phases for seconds in phase[0]]
    wall, trips, opened, failed = (sum(phase[column] for phase in phases) for column in range(1, 5))
    return {
        "median": statistics.median(latencies) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
        "rps": len(latencies) / wall,
        "trips": trips / len(latencies),
        "opened": opened,
        "failed": failed,
    }


def survive_suspends(url, standin):
    failures = 0
    for number in range(1, SUSPEND_REQUESTS + 1):
        failures += get(url)[0] != 200
        if number % SUSPEND_EVERY == 0:
            standin.suspend()
    return failures


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def plot(path, rows, delay_ms):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(14, 5))
    labels = [f"({key}) {CONFIGURATIONS[key][0]}" for key in CONFIGURATIONS]
    width = 0.38
    for offset, clients in ((-width / 2, 1), (width / 2, CLIENTS)):
        medians = [rows[key, clients]["median"] for key in CONFIGURATIONS]
        p95s = [rows[key, clients]["p95"] - rows[key, clients]["median"] for key in CONFIGURATIONS]
        bars = axes.bar(
            [index + offset for index in range(len(labels))],
            medians,
            width,
            yerr=[[0] * len(p95s), p95s],
            capsize=3,
            label=f"{clients} client{'s' if clients > 1 else ''} (bar: median, whisker: p95)",
        )
        trips = [f"{rows[key, clients]['trips']:.1f} rt" for key in CONFIGURATIONS]
        axes.bar_label(bars, trips, label_type="center", fontsize=8, color="white")
    axes.set_xticks(range(len(labels)), labels, rotation=15)
    axes.set_ylabel("ms per request")
    axes.set_title(f"One-query request, {delay_ms:g} ms each way to the pooler")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20, help="per round, one client")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="added each way")
    parser.add_argument("--plot", type=Path, default=TEMPLATE / "bench" / "latency.png")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        standin = neon_standin.start()
        stack.callback(standin.stop)
        print("baking the default project…", flush=True)
        project = bake(workdir, standin)
        proxy = stack.enter_context(CountingProxy(standin.pooler_port, options.delay_ms / 1000))
        app_url = proxy.routed(standin.pooled_url)
        (project / "config" / "django_asgi.py").write_text(DJANGO_ASGI)
        bases = {}
        for key, (name, lines) in CONFIGURATIONS.items():
            settings = stack.enter_context(one_query_settings(project, f"bench_{name}", lines))
            served = SERVED.get(key, {})
            env = build.clean_env(
                DATABASE_URL=app_url,
                DJANGO_SETTINGS_MODULE=settings,
                DJANGO_CONN_MAX_AGE="300",
                **served.get("env", {}),
            )
            serving = {"asgi": True} if served.get("asgi") else {"threads": CLIENTS}
            if "app" in served:
                serving["asgi_app"] = served["app"]
            base = stack.enter_context(serve(project, env, **serving))
            bases[key] = base + served.get("path", ONE_QUERY_PATH)

        phases = {(key, clients): [] for key in CONFIGURATIONS for clients in (1, CLIENTS)}
        concurrent_requests = CLIENTS * max(1, 2 * options.requests // CLIENTS)
        for round_number in range(options.rounds + 1):  # round 0 warms up and is not counted
            # (a) next to (d), whose ratio matters most; every other round backwards, so that a
            # machine getting busier or quieter weighs on all alike.
            order = list("aefhigdcb") if round_number % 2 else list("bcdgihfea")
            for key in order:
                if not round_number:
                    warm_up(bases[key], proxy, concurrent_requests)
                for clients, requests in ((1, options.requests), (CLIENTS, concurrent_requests)):
                    phase = measure(bases[key], proxy, requests, clients)
                    if round_number:
                        phases[key, clients].append(phase)
            print(f"round {round_number} done", flush=True)
        rows = {label: summary(measured) for label, measured in phases.items()}
        survived = {key: survive_suspends(bases[key], standin) for key in SURVIVORS}

    print(
        f"\n{options.rounds} rounds, {options.delay_ms:g} ms each way, one-query view, "
        f"gunicorn 1 worker × {CLIENTS} threads, uvicorn 1 process\n"
    )
    print(
        "| configuration | clients | median | p95 | requests/s | round trips per request "
        "| connections opened |"
    )
    print("|---|---|---|---|---|---|---|")
    for (key, clients), row in rows.items():
        name = CONFIGURATIONS[key][0]
        print(
            f"| ({key}) {name} | {clients} | {row['median']:.1f} ms | {row['p95']:.1f} ms "
            f"| {row['rps']:.0f} | {row['trips']:.2f} | {row['opened']} |"
        )
    failed = sum(row["failed"] for row in rows.values())
    print(f"\nfailed requests during the rounds: {failed}")
    for key, failures in survived.items():
        print(
            f"({key}) {CONFIGURATIONS[key][0]}: {failures} of {SUSPEND_REQUESTS} requests failed "
            f"across {SUSPEND_REQUESTS // SUSPEND_EVERY} suspends"
        )
    plot(options.plot, rows, options.delay_ms)
    print(f"plot: {options.plot}")
    a, b, d = (rows[key, 1]["median"] for key in "abd")
    a8, e8, f8, g8, h8, i8 = (rows[key, CLIENTS]["median"] for key in "aefghi")
    print(
        f"RESULT ratio_naive_over_default={b / a:.2f} default_over_limit={a / d:.3f} "
        f"asgi_async_over_default_c8={e8 / a8:.3f} asgi_sync_over_default_c8={f8 / a8:.3f} "
        f"pool_over_default_c8={g8 / a8:.3f} django_asgi_async_over_default_c8={h8 / a8:.3f} "
        f"django_asgi_sync_over_default_c8={i8 / a8:.3f}"
    )


if __name__ == "__main__":
    main()
