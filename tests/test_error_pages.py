"""With DEBUG on (the .env default) and the database down, no page or log shows the password.

A baked project served by Django's development server against the local Neon stand-in, whose
role's password is full of characters that URLs, JSON, Python and HTML each write differently.
The pooler is stopped, so every request that needs the database fails inside psycopg, whose
frames hold the connection string; the request's environment holds DATABASE_URL.
"""

import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from samples import written_forms

pytestmark = pytest.mark.slow

DATABASE = "error_pages"


def get(url, **headers):
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(scope="module")
def served(standin_project):
    """(base URL, server process, its first lines) of the project's development server, DEBUG on."""
    baked = standin_project(
        DATABASE, direct=False, project_name="Error Pages", check_connection="no"
    )
    assert baked.dotenv()["DJANGO_DEBUG"] == "true"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [baked.python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=baked.project,
        env=baked.env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = ""
        while "Quit the server with" not in started:  # runserver's last line before it serves
            line = server.stdout.readline()
            if not line:
                pytest.fail(f"runserver exited: {started}")
            started += line
        yield base, server, started
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_debug_pages_health_and_logs_show_no_password_with_the_database_down(served, neon):
    base, server, started = served
    with neon.pooler_stopped():
        # A session cookie makes the admin look the session up: psycopg fails to connect.
        status, page = get(f"{base}/admin/", Cookie="sessionid=" + "a" * 32)
        health_status, health = get(f"{base}/health/")
        home_status, home = get(f"{base}/")
    server.terminate()
    log = started + server.communicate(timeout=10)[0]
    assert status == 500 and "OperationalError" in page  # Django's debug page, frames and all
    assert "conninfo" in page and "********************" in page  # psycopg's frame, masked
    assert "DATABASE_URL" in page  # the request's environment is listed, its value masked
    assert health_status == 503 and '"error"' in health
    assert home_status == 200 and "No database connection." in home
    assert "Internal Server Error: /admin/" in log
    for where, text in {"debug page": page, "/health/": health, "home": home, "log": log}.items():
        shown = [form for form in written_forms(neon.password) if form in text]
        assert shown == [], f"{where} shows the password as {shown}"
