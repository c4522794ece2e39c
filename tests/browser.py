"""A real headless browser for the template's tests: Debian's chromium, driven over a pipe.

Chromium speaks the DevTools protocol on file descriptors 3 (commands in) and 4 (answers out)
when started with --remote-debugging-pipe: JSON messages ended by a NUL byte. That needs nothing
beyond the standard library, and no port to find or to leak.

    with Browser.start() as browser:
        page = browser.open("http://127.0.0.1:8000/")
        page.evaluate("document.title"); page.screenshot(path)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# Flags that work here as root and in CI: see the project's notes on the machine.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
WINDOW = (1280, 900)


class BrowserUnavailable(Exception):
    """No chromium on this machine, or it would not start."""


def find_chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, process, profile):
        self.process, self.profile = process, profile
        self.commands, self.answers = process.stdin, process.stdout
        self.next_id = 0
        self.buffer = b""
        self.events = []

    @classmethod
    def start(cls):
        chromium = find_chromium()
        if chromium is None:
            raise BrowserUnavailable("chromium is not installed (apt-get install chromium)")
        profile = tempfile.mkdtemp(prefix="chromium-")
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()

        def wire_fds():
            # In the child: the pipe ends become fds 3 and 4, by way of fds no pipe end holds.
            reads, writes = (
                fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in (to_browser_read, from_browser_write)
            )
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        process = subprocess.Popen(
            [
                chromium,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        process.stdin = os.fdopen(to_browser_write, "wb", buffering=0)
        process.stdout = os.fdopen(from_browser_read, "rb", buffering=0)
        browser = cls(process, profile)
        try:
            browser.call("Browser.getVersion", timeout=30)
        except Exception as error:
            browser.close()
            raise BrowserUnavailable(f"chromium did not start: {error}") from None
        return browser

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        # Already gone, perhaps: the process is reaped below either way.
        with contextlib.suppress(Exception):
            self.call("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pipe in (self.commands, self.answers):
            pipe.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method, params=None, session=None, timeout=30):
        """Send one command and wait for its answer; events seen meanwhile are kept."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.commands.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method, session, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event["params"]
            self.events.append(self._receive(deadline))

    def _receive(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.answers], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.answers.fileno(), 1 << 20)
            if not chunk:
                raise BrowserUnavailable("chromium closed the pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def open(self, url):
        """A new tab showing `url`, once its load event has fired."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        self.call("Page.enable", session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        return page


class Page:
    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        """Save a PNG of the viewport; returns its bytes."""
        data = base64.b64decode(
            self.browser.call("Page.captureScreenshot", {"format": "png"}, session=self.session)[
                "data"
            ]
        )
        Path(path).write_bytes(data)
        return data
