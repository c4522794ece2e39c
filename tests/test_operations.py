"""Running a baked project as an operator does: its logs, its errors, its health probes.

Served by gunicorn against the local Neon stand-in. What the logs must give: one line per event
with time, level and logger, the cause of every database failure a page hides, never the
password, and no line twice while DEBUG is on.
"""

import re
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from served_project import free_port, serve

pytestmark = pytest.mark.slow

# 2026-11-22 03:30:13,533 WARNING status.views: …
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: "
)


def request(url, host=None, https=False):
    """(status, body, Location) of a GET; plain HTTP unless `https` (as a proxy would say)."""
    headers = {"X-Forwarded-Proto": "https"} if https else {}
    if host:
        headers["Host"] = host
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, response.read().decode(), response.headers.get("Location")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("Location")


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Log:
    """What the server wrote to stderr so far."""

    def __init__(self, path):
        self.path = path

    def text(self):
        return self.path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def served(project, **env):
    """gunicorn serving the project, ready once /health/ answers: (base URL, Log of its output)."""
    log_path = project.output_dir / f"gunicorn-{time.monotonic_ns()}.log"
    with (
        open(log_path, "w") as log_file,
        serve(project.project, project.env(**env), ready_path="/health/", log=log_file) as base,
    ):
        yield base, Log(log_path)


PRODUCTION = {"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "app.example.com,127.0.0.1"}


def django_lines(log):
    """The lines Django wrote (gunicorn's own start and stop lines have their own format)."""
    return [line for line in log.text().splitlines() if not line.startswith("[")]


def test_a_database_failure_is_logged_with_its_cause_and_no_password(migrated_project, neon):
    with served(migrated_project, **PRODUCTION) as (base, log), neon.pooler_stopped():
        assert request(f"{base}/health/", https=True)[0] == 503
        status, page, _ = request(f"{base}/", https=True)
        assert status == 200 and "No database connection." in page
        time.sleep(0.2)
    lines = django_lines(log)
    assert lines, log.text()
    for line in lines:
        assert LOG_LINE.match(line), f"not one line with time, level and logger: {line!r}"
    causes = [line for line in lines if "OperationalError" in line]
    assert any("WARNING status.views: Health check failed: OperationalError: " in c for c in causes)
    assert any("WARNING status.views: Home page without database: " in c for c in causes)
    assert neon.password not in log.text()
    assert "Traceback" not in log.text()


def test_with_debug_on_each_line_appears_once(migrated_project, neon):
    with served(migrated_project, DJANGO_DEBUG="true") as (base, log), neon.pooler_stopped():
        request(f"{base}/health/")
        request(f"{base}/")
        time.sleep(0.2)
    lines = django_lines(log)
    assert len([line for line in lines if "Health check failed" in line]) == 1, lines
    assert len([line for line in lines if "Service Unavailable: /health/" in line]) == 1, lines
    messages = [LOG_LINE.sub("", line) for line in lines]
    assert len(messages) == len(set(messages)), lines


def test_health_answers_probes_by_ip_over_plain_http(migrated_project):
    with served(migrated_project, **PRODUCTION) as (base, _log):
        # A load balancer: the instance's IP as the host, no HTTPS, both paths under /health/.
        status, body, _ = request(f"{base}/health/", host="10.1.2.3:8000")
        assert (status, body) == (200, '{"status": "ok"}')
        assert request(f"{base}/health/no-such-probe/", host="10.1.2.3")[0] == 404
        # Everything else still checks the host and redirects to HTTPS.
        assert request(f"{base}/", host="10.1.2.3")[0] == 400
        status, _, location = request(f"{base}/", host="app.example.com")
        assert (status, location) == (301, "https://app.example.com/")
        assert request(f"{base}/", host="app.example.com", https=True)[0] == 200


def test_production_without_hosts_says_which_variable_to_set(migrated_project):
    env = {"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": ""}
    gunicorn = migrated_project.project / ".venv" / "bin" / "gunicorn"
    bind = f"127.0.0.1:{free_port()}"
    result = migrated_project.run(gunicorn, "config.wsgi", "--bind", bind, env=env, check=False)
    assert result.returncode != 0  # the worker cannot boot, so gunicorn stops
    lines = result.stderr.splitlines()
    assert (
        "DJANGO_DEBUG is off and DJANGO_ALLOWED_HOSTS is empty: set it to your site's host "
        "names (to try production locally: DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1)" in lines
    )
    # Commands that serve nothing need no host.
    migrated_project.manage("showmigrations", "accounts", env=env)
