"""Debian's headless Chromium, started the way this machine's closed network needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(page: Path, profile: Path, *args: str, budget_ms: int = 15_000) -> subprocess.CompletedProcess:
    """Open a local page in a fresh profile, let its scripts run for ``budget_ms`` of virtual time."""
    return subprocess.run(
        [
            str(CHROMIUM),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


class DevTools:
    """A headless Chromium driven through the DevTools protocol: open a page, run script in it,
    wait for the next page to load. One tab, one fresh profile."""

    def __init__(self, profile: Path, *flags: str) -> None:
        import json
        import time
        import urllib.request

        from websockets.sync.client import connect

        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a previous browser's port
        self.process = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, *flags, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Chromium writes the port it chose into the profile.
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        self.socket = None
        self.next_id = 0
        self.events: list[dict] = []
        self.problems: list[str] = []  # every script error and console error seen, in order
        self.requests: list[str] = []  # the URL of every request the pages made
        try:
            port = int(port_file.read_text().split()[0])
            pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
            target = next(p for p in pages if p["type"] == "page")
            # Held for the life of this object (closed in close()), not one with-block.
            # No keepalive pings: while a test waits without reading, pongs queue behind events and
            # the ping would time out; the browser is a local child process.
            self.socket = connect(
                target["webSocketDebuggerUrl"], max_size=None, open_timeout=10, ping_interval=None
            ).__enter__()
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Log.enable")
            self.call("Network.enable")
        except BaseException:
            self.close()  # no browser left behind
            raise

    def call(self, method: str, **params) -> dict:
        import json

        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.keep(message)

    def keep(self, message: dict) -> None:
        """Note an event: script errors and console errors go to ``problems`` as well."""
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.problems.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.problems.append(
                "console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
            )
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))
            return  # many; kept in ``requests`` only
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        self.events.append(message)

    def foreign_requests(self) -> list[str]:
        """Requests to anywhere but this machine (a CDN, say): none is expected."""
        from urllib.parse import urlsplit

        local = ("127.0.0.1", "localhost", None)
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob", "about") and urlsplit(url).hostname not in local
        ]

    def idle(self, seconds: float) -> None:
        """Let the page run for ``seconds``, noting what it reports meanwhile."""
        import json
        import time

        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.keep(json.loads(self.socket.recv(timeout=remaining)))
            except TimeoutError:
                return

    def screenshot(self, path: Path, whole_page: bool = True) -> Path:
        """A PNG of the page; ``whole_page`` includes what lies below the window. An application
        that scrolls inside its own panels (JupyterLab) wants the window only: making the window
        as tall as the page for the capture lays the panels out again."""
        import base64

        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=whole_page)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def viewport(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def wait_until(self, expression: str, timeout: float = 60.0, every: float = 0.5):
        """Evaluate ``expression`` until it is truthy; return its value."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout:.0f} s: {expression}")
            self.idle(every)

    def wait_for(self, event: str, timeout: float = 30.0) -> dict:
        import json
        import time

        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(index)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event} within {timeout:.0f} s")
            self.keep(json.loads(self.socket.recv(timeout=remaining)))

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def click_and_load(self, selector: str) -> None:
        """Click the element a link or button is, and wait for the page it leads to."""
        self.events.clear()
        self.evaluate(f"document.querySelector({selector!r}).click()")
        self.wait_for("Page.loadEventFired")

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
