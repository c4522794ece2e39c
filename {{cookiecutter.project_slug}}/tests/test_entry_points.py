"""Who connects where is decided by how the process starts: see config/neon.py and the README."""

import pytest
from fresh_process import run_python

SHOW = (
    "from django.conf import settings; database = settings.DATABASES['default']; "
    "print(database['HOST'], database['CONN_MAX_AGE'], database['DISABLE_SERVER_SIDE_CURSORS'], "
    "'pool' in database['OPTIONS'])"
)


def database_seen_by(entry_point):
    """HOST, CONN_MAX_AGE, DISABLE_SERVER_SIDE_CURSORS and pool on, as a process there sees them."""
    result = run_python("-c", f"{entry_point}\n{SHOW}", DJANGO_CONN_MAX_AGE="60")
    assert result.returncode == 0, result.stderr
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
    result = run_python("-c", ASGI_REQUESTS, DJANGO_DEBUG="false")
    assert result.returncode == 0, result.stderr
    live, missing = result.stdout.splitlines()
    assert live == '200 {"status": "ok"}'
    assert missing == "404 <!doctype html>"
