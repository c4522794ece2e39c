"""config/asgi.py's handler under uvicorn, against the Neon stand-in: each request's sync work in
one thread (kept for later requests), the pooled connection given back, streams that end when
their client leaves, and Django's own request flow (CSRF, sessions, admin login) intact.
"""

import http.client
import re
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from served_project import eventually, get, get_json, one_query_settings, serve, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"

# `started` holds, per thread, the scope of the last request_started sent in that thread: a
# view that finds its own request's scope there ran in the thread that started the request.
URLS = """\
import asyncio
import threading
import time

from asgiref.sync import sync_to_async
from django.contrib import admin
from django.core.signals import request_finished, request_started
from django.db import connection
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

started = threading.local()
finished = []
stream_closed = threading.Event()


def remember_scope(sender, scope=None, **kwargs):
    started.scope = scope


def record_finish(sender, **kwargs):
    # After Django's own receiver (connected first), which gives this thread's connection back.
    path = getattr(started, "scope", {}).get("path")
    finished.append({"path": path, "released": connection.connection is None})


request_started.connect(remember_scope)
request_finished.connect(record_finish)
finish_fails = threading.Event()


def fail_to_finish(sender, **kwargs):
    if finish_fails.is_set():
        finish_fails.clear()
        raise RuntimeError("a request_finished receiver that fails")


request_finished.connect(fail_to_finish)


def fail_to_start(sender, scope=None, **kwargs):
    if scope["path"] == "/fails-to-start/":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        raise RuntimeError("a request_started receiver that fails")


request_started.connect(fail_to_start)


def same_thread(request):
    return getattr(started, "scope", None) is request.scope


def thread(request):
    time.sleep(float(request.GET.get("sleep", 0)))
    # Its name, not its ident: a new thread may get the ident of one that ended.
    name = threading.current_thread().name
    return JsonResponse({"thread": name, "same_thread": same_thread(request)})


def executor_threads(request):
    names = [thread.name for thread in threading.enumerate()]
    return HttpResponse(str(sum(name.startswith("ThreadPoolExecutor-") for name in names)))


async def async_thread(request):
    return JsonResponse({"same_thread": await sync_to_async(same_thread)(request)})


def one_query(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return HttpResponse(str(cursor.fetchone()[0]))


def finishes(request):
    path = request.GET["path"]
    return JsonResponse([each for each in finished if each["path"] == path], safe=False)


def rows(request):
    def each_row():
        for number in range(3):
            with connection.cursor() as cursor:
                cursor.execute("SELECT %s", [number])
                yield f"{cursor.fetchone()[0]}\\n"

    return StreamingHttpResponse(each_row())


async def events(request):
    async def ticks():
        try:
            while True:
                yield b"data: tick\\n\\n"
                await asyncio.sleep(0.05)
        finally:
            stream_closed.set()

    return StreamingHttpResponse(ticks(), content_type="text/event-stream")


def events_closed(request):
    return HttpResponse(str(stream_closed.is_set()))


def boom(request):
    raise RuntimeError("a view that fails")


def saved(request):
    finish_fails.set()
    return HttpResponse("saved")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("thread/", thread),
    path("executor-threads/", executor_threads),
    path("async-thread/", async_thread),
    path("one-query/", one_query),
    path("finishes/", finishes),
    path("rows/", rows),
    path("events/", events),
    path("events-closed/", events_closed),
    path("boom/", boom),
    path("saved/", saved),
]
"""


@pytest.fixture(scope="module")
def served(project):
    """(base URL, log file) of the migrated project under uvicorn, with the views above."""
    project.manage("migrate", "--noinput")
    superuser = {"DJANGO_SUPERUSER_PASSWORD": PASSWORD}
    project.manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@example.com",
        env=superuser,
    )
    with (
        tempfile.TemporaryFile(mode="w+") as log,
        one_query_settings(project.project, "asgi_settings", urls=URLS) as settings,
    ):
        env = project.env(DJANGO_SETTINGS_MODULE=settings)
        with serve(project.project, env, asgi=True, log=log) as base:
            yield base, log


def test_a_request_runs_in_one_thread_which_later_requests_reuse(served):
    base, _ = served
    answers = [get_json(f"{base}/thread/") for _ in range(5)]
    # request_started and the view ran in one thread: no hop between the middleware and the view.
    assert all(answer["same_thread"] for answer in answers)
    assert len({answer["thread"] for answer in answers}) == 1

    # Requests at once get threads of their own: they do not wait for each other.
    started = time.monotonic()
    with ThreadPoolExecutor(4) as clients:
        answers = list(clients.map(get_json, [f"{base}/thread/?sleep=0.5"] * 4))
    assert time.monotonic() - started < 1.5
    assert len({answer["thread"] for answer in answers}) == 4


def test_a_burst_leaves_at_most_the_kept_threads_behind(served):
    base, _ = served
    with ThreadPoolExecutor(40) as clients:
        answers = list(clients.map(get_json, [f"{base}/thread/?sleep=0.3"] * 40))
    assert len({answer["thread"] for answer in answers}) == 40
    # 32 kept (config/asgi.py's KEPT_THREADS), and perhaps asgiref's own thread-sensitive one.
    threads = lambda: int(get(f"{base}/executor-threads/")[1])  # noqa: E731
    assert wait_until(lambda: threads() <= 33)


def test_an_async_views_sync_work_runs_in_its_requests_thread(served):
    base, _ = served
    assert get_json(f"{base}/async-thread/") == {"same_thread": True}


def test_each_response_gives_the_connection_back_from_the_thread_that_borrowed_it(served):
    """request_finished (which gives the pooled connection back) runs in the thread that started
    the request, once per request, whatever kind of response it made."""
    base, _ = served

    def finishes(path):
        return get_json(f"{base}/finishes/?path={path}")

    assert get(f"{base}/one-query/") == (200, "1")
    assert finishes("/one-query/") == [{"path": "/one-query/", "released": True}]
    with ThreadPoolExecutor(8) as clients:
        assert set(clients.map(get, [f"{base}/one-query/"] * 32)) == {(200, "1")}
    assert finishes("/one-query/") == [{"path": "/one-query/", "released": True}] * 33

    # A stream reads the database as it is sent; it is closed after its last part.
    assert get(f"{base}/rows/") == (200, "0\n1\n2\n")
    expected = [{"path": "/rows/", "released": True}]
    assert eventually(lambda: finishes("/rows/"), expected.__eq__) == expected


def test_an_endless_stream_stops_when_its_client_goes_away(served):
    base, _ = served
    assert get(f"{base}/events-closed/") == (200, "False")
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    client = http.client.HTTPConnection(host, int(port), timeout=5)
    client.request("GET", "/events/", headers={"X-Forwarded-Proto": "https"})
    response = client.getresponse()
    assert response.status == 200
    assert response.read1(100).startswith(b"data: tick")
    client.close()
    closed = (200, "True")
    assert eventually(lambda: get(f"{base}/events-closed/"), closed.__eq__) == closed


class Browser:
    """Requests as a browser behind an HTTPS proxy sends them, keeping cookies; no redirects
    followed. (Production cookies are Secure: http.cookiejar would not send them over http.)"""

    def __init__(self, base):
        self.netloc = urllib.parse.urlsplit(base).netloc
        self.cookies = {}

    def request(self, method, path, form=None):
        headers = {"X-Forwarded-Proto": "https", "Referer": f"https://{self.netloc}{path}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        client = http.client.HTTPConnection(self.netloc, timeout=10)
        try:
            client.request(method, path, body=body, headers=headers)
            response = client.getresponse()
            for cookie in response.headers.get_all("Set-Cookie") or []:
                name, value = cookie.split(";", 1)[0].split("=", 1)
                self.cookies[name] = value
            return response.status, response.getheader("Location"), response.read().decode()
        finally:
            client.close()


def test_an_admin_logs_in_through_the_middleware(served):
    """CSRF, sessions, authentication and messages, as a browser meets them: the form's token
    and cookie, a POST answered by a redirect, then a page for a logged-in user."""
    browser = Browser(served[0])
    status, _, page = browser.request("GET", "/admin/login/")
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = {"csrfmiddlewaretoken": token, "username": "admin", "password": PASSWORD}
    assert browser.request("POST", "/admin/login/?next=/admin/", form)[:2] == (302, "/admin/")
    status, _, page = browser.request("GET", "/admin/")
    assert status == 200 and "Site administration" in page


NEW_THREADS_APP = """\
import config.asgi

# As with asgiref before 3.13 (Python 3.10): a thread of its own for every request.
config.asgi.THREADS_CAN_BE_KEPT = False
application = config.asgi.application
"""


def test_without_kept_threads_each_request_starts_one_of_its_own(project, served):
    app_module = project.project / "config" / "asgi_new_threads.py"
    app_module.write_text(NEW_THREADS_APP)
    try:
        with (
            one_query_settings(project.project, "asgi_settings", urls=URLS) as settings,
            serve(
                project.project,
                project.env(DJANGO_SETTINGS_MODULE=settings),
                asgi=True,
                asgi_app="config.asgi_new_threads:application",
            ) as base,
        ):
            answers = [get_json(f"{base}/thread/") for _ in range(3)]
            assert all(answer["same_thread"] for answer in answers)
            assert len({answer["thread"] for answer in answers}) == 3
            assert get_json(f"{base}/async-thread/") == {"same_thread": True}
            assert get(f"{base}/rows/") == (200, "0\n1\n2\n")
            finishes = lambda: get_json(f"{base}/finishes/?path=/rows/")  # noqa: E731
            expected = [{"path": "/rows/", "released": True}]
            assert eventually(finishes, expected.__eq__) == expected
    finally:
        app_module.unlink()


def test_a_failing_view_gives_a_500_and_a_logged_traceback(served):
    base, log = served
    assert get(f"{base}/boom/")[0] == 500
    assert get(f"{base}/thread/")[0] == 200  # and the thread it failed in serves on
    log.seek(0)
    assert "RuntimeError: a view that fails" in log.read()


def test_a_failing_request_finished_receiver_does_not_replace_the_response(served):
    """As under Django's handler: the response was made (a form's write is committed), so the
    client gets it; the receiver's error is logged after it."""
    base, log = served
    assert get(f"{base}/saved/") == (200, "saved")
    assert get(f"{base}/one-query/") == (200, "1")
    log.seek(0)
    assert "RuntimeError: a request_finished receiver that fails" in log.read()


def test_a_failing_request_started_receiver_gives_its_connection_back(served):
    """No request_finished follows it, and its thread is dropped: without closing the thread's
    connections, each such request would take one of the pool's (10) for good."""
    base, _ = served
    for _ in range(12):
        assert get(f"{base}/fails-to-start/")[0] == 500
    started = time.monotonic()
    assert get(f"{base}/one-query/") == (200, "1")
    assert time.monotonic() - started < 5  # not a wait for the pool's timeout (10 s)
