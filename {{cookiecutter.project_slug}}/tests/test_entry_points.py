"""Who connects where is decided by how the process starts: see config/neon.py and the README."""

import subprocess
import sys
from pathlib import Path

import pytest

POOLED = "postgresql://u:p@ep-quiet-lake-a1b2c3d4-pooler.us-east-2.aws.neon.tech/neondb"
PROJECT = Path(__file__).resolve().parent.parent
SHOW = (
    "from django.conf import settings; database = settings.DATABASES['default']; "
    "print(database['HOST'], database['CONN_MAX_AGE'], database['DISABLE_SERVER_SIDE_CURSORS'], "
    "'pool' in database['OPTIONS'])"
)


def database_seen_by(entry_point):
    """HOST, CONN_MAX_AGE, DISABLE_SERVER_SIDE_CURSORS and pool on, as a process there sees them."""
    env = {  # set even when empty: .env fills in only what the environment leaves unset
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": POOLED,
        "DATABASE_URL_UNPOOLED": "",
        "DATABASE_REPLICA_URL": "",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "DJANGO_CONN_MAX_AGE": "60",
    }
    result = subprocess.run(
        [sys.executable, "-c", f"{entry_point}\n{SHOW}"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


@pytest.mark.parametrize(
    ("entry_point", "expected"),
    [
        pytest.param("import config.wsgi", ["-pooler", "60", "True", "False"], id="wsgi"),
        pytest.param("import config.asgi", ["-pooler", "0", "True", "True"], id="asgi"),
        pytest.param(
            "import contextlib, io, sys, manage\n"
            "sys.argv = ['manage.py', 'runserver', '--help']\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    manage.main()",
            ["-pooler", "60", "True", "False"],
            id="runserver",
        ),
        pytest.param(
            "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'\n"
            "import django; django.setup()",
            ["ep-quiet-lake-a1b2c3d4.", "60", "False", "False"],
            id="commands-and-tests",
        ),
    ],
)
def test_requests_use_the_pooler_and_everything_else_the_direct_host(entry_point, expected):
    host, *seen = database_seen_by(entry_point)
    assert expected[0] in host and seen == expected[1:]


# config/asgi.py's handler builds on Django's ASGIHandler: a request through every middleware
# (a page that does not exist) and one answered before them, with no database.
ASGI_REQUESTS = """\
import asyncio

from asgiref.testing import ApplicationCommunicator

from config.asgi import application


async def get(path):
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"example.com")],
        "client": ("127.0.0.1", 50000), "server": ("example.com", 443),
    }
    request = ApplicationCommunicator(application, scope)
    await request.send_input({"type": "http.request", "body": b""})
    start = await request.receive_output(10)
    body = await request.receive_output(10)
    print(start["status"], body["body"].decode().strip().splitlines()[0])


asyncio.run(get("/health/live/"))
asyncio.run(get("/no-such-page/"))
"""


def test_the_asgi_application_answers_requests():
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": POOLED,
        "DATABASE_URL_UNPOOLED": "",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "DJANGO_DEBUG": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", ASGI_REQUESTS],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    live, missing = result.stdout.splitlines()
    assert live == '200 {"status": "ok"}'
    assert missing == "404 <!doctype html>"
