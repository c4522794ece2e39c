"""ASGI entry point: `uvicorn config.asgi:application`. Requests use Neon's pooled connection.

Connections: under ASGI a request's synchronous parts (the ORM, sync views) run in a thread of
its own, and there are as many such threads as requests at once (on Python 3.10, a new one for
every request), so connections kept per thread (CONN_MAX_AGE) would pile up or be opened anew.
Django's own advice for ASGI is its connection pool: each request borrows a connection and gives
it back at the end. So the pool is on here unless DJANGO_DB_POOL says otherwise, and
DJANGO_CONN_MAX_AGE is 0 whatever the environment says.

Speed: Django's ASGI handler runs the middleware on the event loop, but its built-in middleware
(sessions, CSRF, authentication, messages…) are synchronous, so each of their steps is a trip to
a thread and back: about fifteen trips a request, all queued on one event loop. A one-query page
took 1.7 to 1.8 times as long as under gunicorn with 8 requests at once (the template's
bench/latency.py measures both handlers).
The handler below makes one trip instead: the whole request (signals, middleware, view, and
closing the response, which gives the connection back) runs in one thread, as under gunicorn,
and the event loop only reads the request and sends the response. The thread is kept for a later
request rather than started anew each time.

Async views still run on the event loop (Django calls them from the request's thread), and a
streamed response (server-sent events too) stops when its client goes away. What this gives up:
an async view is not cancelled when its client disconnects mid-request, and a middleware written
async-only is called from the thread (through async_to_sync: it works, one trip slower). Django's
own handler is one line away: `application = get_asgi_application()` (from django.core.asgi).

A streamed response keeps the pooled connection its view borrowed until the stream ends, under
either handler: a view that streams for long (server-sent events) should give it back first, with
`django.db.connection.close()` before it returns the response.
"""

import asyncio
import inspect
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, closing

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.db import connections
from django.http import FileResponse
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_USE_POOLER", "true")
os.environ.setdefault("DJANGO_DB_POOL", "true")
os.environ["DJANGO_CONN_MAX_AGE"] = "0"

# asgiref 3.13 (Python 3.11+) lets a request run in a thread it is given; before, every request
# starts a thread of its own, as under Django's handler.
THREADS_CAN_BE_KEPT = "executor" in inspect.signature(ThreadSensitiveContext).parameters
# Idle threads kept for later requests; a burst's threads beyond these end with it.
KEPT_THREADS = 32


class OneTripASGIHandler(ASGIHandler):
    """Django's ASGI handler, with each request's synchronous work done in one trip to a thread.

    It reuses ASGIHandler's read_body, create_request, send_response and listen_for_disconnect,
    which Django does not document: tests/test_entry_points.py sends requests through it, so a
    Django upgrade that changes them fails there first.
    """

    def __init__(self):
        # Not ASGIHandler.__init__: that builds the middleware chain for the event loop.
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.idle_threads = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django's refusal
        async with self.request_thread():
            await self.handle(scope, receive, send)

    @asynccontextmanager
    async def request_thread(self):
        """Sends the request's thread-sensitive work (the ORM, sync code) to one thread."""
        if not THREADS_CAN_BE_KEPT:
            async with ThreadSensitiveContext():
                yield
            return
        thread = self.idle_threads.pop() if self.idle_threads else ThreadPoolExecutor(1)
        try:
            async with ThreadSensitiveContext(executor=thread):
                yield
        except BaseException:
            # A cancelled request's work may still be running there: not for another request.
            thread.shutdown(wait=False)
            raise
        if len(self.idle_threads) < KEPT_THREADS:
            self.idle_threads.append(thread)
        else:
            thread.shutdown(wait=False)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            response, closing_error = await sync_to_async(self.respond)(scope, body_file)
            if response.streaming:
                await self.stream(response, receive, send)
            else:
                await self.send_response(response, send)
                if closing_error is not None:
                    raise closing_error  # logged by the server, once the response is out

    def respond(self, scope, body_file):
        """The response, made in this thread from start to finish, as a WSGI server makes it,
        and what closing it raised, if it is not streamed."""
        set_script_prefix(get_script_prefix(scope))
        try:
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = self.get_response(request)
                response._handler_class = self.__class__
        except BaseException:
            # A request_started receiver failed: no request_finished will give back a connection
            # it borrowed, and this thread is dropped; the pool would lose the connection.
            connections.close_all()
            raise
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            # Its content is in memory: closing it now (request_finished) gives the database
            # connection back before the response is sent, from the thread that holds it. A
            # request_finished receiver that fails does not replace the finished response with
            # a 500 (its writes are committed): as under Django's handler, the error comes after.
            try:
                response.close()
            except Exception as error:
                return response, error
        return response, None

    async def stream(self, response, receive, send):
        """Sends a streamed response until it ends or its client goes away, then closes it."""
        sending = asyncio.create_task(self.send_response(response, send))
        leaving = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((sending, leaving), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, leaving):
                task.cancel()
            sent, _ = await asyncio.gather(sending, leaving, return_exceptions=True)
            await sync_to_async(response.close)()
        if isinstance(sent, Exception):
            raise sent


django.setup(set_prefix=False)
application = OneTripASGIHandler()
