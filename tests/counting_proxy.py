"""A TCP proxy on loopback that adds network delay and counts round trips.

Put between an app and the Neon stand-in, it shows what a connection costs on the wire:

    with CountingProxy(upstream_port=standin.pooler_port, delay_seconds=0.010) as proxy:
        ...  # connect to 127.0.0.1:proxy.port
        proxy.round_trips, proxy.connections

Every byte from either side is delivered `delay_seconds` after it arrived, in order, and a new
connection waits one round trip before its first byte moves (the TCP handshake). A round trip is
counted when the server speaks after the client did: a request and its answer, however many
packets each takes; so is each TCP handshake. What the server sends after the client closed
(TLS's goodbye) is no answer and does not count. With a delay, a client's burst always reaches the
proxy before the answer to its first packet can, so the count does not depend on scheduling.
Used by the tests and by bench/latency.py.
"""

from __future__ import annotations

import asyncio
import threading

CHUNK = 65536


class CountingProxy:
    def __init__(self, upstream_port: int, delay_seconds: float = 0.0):
        self.upstream = ("127.0.0.1", upstream_port)
        self.delay = delay_seconds
        self.port = 0
        self._lock = threading.Lock()
        self._round_trips = 0
        self._connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def round_trips(self) -> int:
        with self._lock:
            return self._round_trips

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def routed(self, url: str) -> str:
        """The connection string `url` to the upstream, through this proxy instead."""
        upstream = f":{self.upstream[1]}/"
        assert upstream in url, f"{url} does not reach port {self.upstream[1]}"
        return url.replace(upstream, f":{self.port}/")

    def reset(self) -> None:
        with self._lock:
            self._round_trips = self._connections = 0

    def start(self) -> CountingProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run():
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0)
            )
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="counting-proxy", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = self._thread = None

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _count(self, round_trips: int = 0, connections: int = 0) -> None:
        with self._lock:
            self._round_trips += round_trips
            self._connections += connections

    async def _serve(self, client_reader, client_writer):
        self._count(round_trips=1, connections=1)  # the TCP handshake
        await asyncio.sleep(2 * self.delay)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:  # nothing listening upstream: the client sees the door shut
            client_writer.close()
            return
        last_speaker = ["server"]  # the handshake's answer came last
        await asyncio.gather(
            self._pipe(client_reader, server_writer, "client", last_speaker),
            self._pipe(server_reader, client_writer, "server", last_speaker),
        )

    async def _pipe(self, reader, writer, speaker, last_speaker):
        """Copy one direction, each chunk `delay` after it arrived; close when the source does."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if data is None:
                    break
                writer.write(data)
                await writer.drain()

        delivery = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(CHUNK):
                if speaker == "server" and last_speaker[0] == "client":
                    self._count(round_trips=1)
                last_speaker[0] = speaker
                queue.put_nowait((loop.time() + self.delay, data))
        except OSError:
            pass  # a reset: end this direction as if closed
        # What a server says after the client hung up (its half of a TLS goodbye) is no answer.
        if speaker == "client":
            last_speaker[0] = "nobody"
        queue.put_nowait((loop.time() + self.delay, None))
        try:
            await delivery
        except OSError:
            pass
        finally:
            writer.close()
