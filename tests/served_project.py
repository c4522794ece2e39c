"""A baked project served by gunicorn or uvicorn, and a view that runs exactly one query.

For the connection tests and bench/latency.py: `one_query_settings()` adds, for the time of a
`with`, a settings module that routes /one-query/ to a view running `SELECT 1` and
/one-query-async/ to an async view doing the same (or the caller's urls, and any settings lines of
the caller's), and `serve()` runs gunicorn (WSGI) or uvicorn (ASGI) in production mode on a free
loopback port. `get()`/`get_json()` ask it as a browser behind an HTTPS proxy would;
`eventually()`/`wait_until()` wait for what a server does a moment after it answered.
"""

import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, nullcontext
from pathlib import Path

ONE_QUERY_PATH = "/one-query/"
ONE_QUERY_ASYNC_PATH = "/one-query-async/"

ONE_QUERY_URLS = """\
from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpResponse
from django.urls import path


def one_query(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return HttpResponse(str(cursor.fetchone()[0]))


async def one_query_async(request):
    # As Django's async ORM does it: the query runs in the request's thread for sync work.
    return await sync_to_async(one_query)(request)


urlpatterns = [path("one-query/", one_query), path("one-query-async/", one_query_async)]
"""

SETTINGS = """\
from config.settings import *  # noqa: F403
from config.settings import DATABASES  # noqa: F401

ROOT_URLCONF = "config.one_query_urls"
"""


@contextmanager
def one_query_settings(
    project_dir: Path, name: str, settings_lines: str = "", urls: str = ONE_QUERY_URLS
):
    """Yields the settings module "config.<name>"; its files are gone afterwards."""
    config = project_dir / "config"
    written = [config / "one_query_urls.py", config / f"{name}.py"]
    written[0].write_text(urls)
    written[1].write_text(SETTINGS + settings_lines)
    try:
        yield f"config.{name}"
    finally:
        for path in written:
            path.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 30) -> tuple[int, str]:
    """(status, body) of a GET, as a browser behind an HTTPS proxy sends it; status 0: no answer."""
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def get_json(url: str):
    """The JSON answer of a GET that must succeed."""
    status, body = get(url)
    assert status == 200, body[:500]
    return json.loads(body)


def wait_until(condition, seconds: float = 10) -> bool:
    """Whether condition() came true within `seconds`."""
    return eventually(condition, bool, seconds)


def eventually(read, until, seconds: float = 10):
    """read()'s answer once until(answer) holds, or its last one after `seconds`: for what a
    server does a moment after it answered (a standby replaying, a thread ending)."""
    deadline = time.monotonic() + seconds
    while not until(answer := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


@contextmanager
def serve(
    project_dir: Path,
    env: dict,
    threads: int = 1,
    ready_path: str = "/static/",
    asgi: bool = False,
    log=None,
    asgi_app: str = "config.asgi:application",
):
    """Yields the base URL of the project served by gunicorn (or uvicorn with `asgi`, serving
    `asgi_app`); `env` is the server's whole environment. Its log goes to the file `log` if
    given."""
    port = free_port()
    bin_dir = project_dir / ".venv" / "bin"
    if asgi:
        command = [str(bin_dir / "uvicorn"), asgi_app, "--no-access-log"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [str(bin_dir / "gunicorn"), "config.wsgi", "--workers", "1"]
        if threads > 1:
            command += ["--worker-class", "gthread", "--threads", str(threads)]
        command += ["--bind", f"127.0.0.1:{port}"]
    # A file, not a pipe: a worker logging many errors must not block on a full pipe.
    with tempfile.TemporaryFile(mode="w+") if log is None else nullcontext(log) as log:
        process = subprocess.Popen(
            command,
            cwd=project_dir,
            env={"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "127.0.0.1", **env},
            stdout=log,  # gunicorn's access log
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            # Any answer will do (a 404 too): the worker is up, and no database was touched.
            while get(f"{base}{ready_path}", timeout=5)[0] == 0:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{Path(command[0]).name} exited: {log.read()[-3000:]}")
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)
