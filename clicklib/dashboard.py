"""A live web dashboard of the pipeline, to leave open on a second screen: ``clicklib dashboard``.

One page on 127.0.0.1 (default port 8866) shows what :mod:`clicklib.monitor` reads, refreshed
every few seconds: the services and their restarts, messages and rates per topic, the lag of
each job and sink, job and connector states with their restarts, the newest one-minute windows
(page views, the error rate and its alerts) and the late and dead-lettered counts.

A background thread takes a reading every ``every`` seconds; the page asks for the newest one.
Each part of a reading is read on its own, so a service that is down fails only its parts: the
page stays up and says which service did not answer. The dashboard only reads: it has no route
that changes anything, and it refuses what the stack's web guard refuses: a Host that is not
this machine's name (a web page that rebinds its own name to 127.0.0.1 still sends that name)
and calls from other sites' pages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd
from aiohttp import web

from clicklib import monitor, resources
from clicklib.exceptions import ClicklibError
from clicklib.offsets import topic_messages
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.stack.web_guard import refusal

HOST = "127.0.0.1"
DEFAULT_EVERY = 5.0
WINDOW_MINUTES = 10
PAGE_FILES = {"/": "index.html", "/dashboard.js": "dashboard.js", "/dashboard.css": "dashboard.css"}
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def _json_value(value: Any) -> Any:
    """A DataFrame cell as JSON: timestamps as ISO text in UTC, NaN, infinities and NaT as null,
    numpy numbers as Python's."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{column: _json_value(value) for column, value in record.items()} for record in frame.to_dict("records")]


def _part(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One part of a reading: ``ok`` with what ``read`` returned, or why it could not be read."""
    try:
        return {"ok": True, **read()}
    except ClicklibError as exc:
        return {"ok": False, "error": str(exc).splitlines()[0]}
    except Exception as exc:  # a part that fails must not take the page down
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def reading(pipeline: Pipeline, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values. Topic rates are per second since the
    counts of ``previous`` (the reading before), null on the first."""
    taken = time.time()
    result: dict[str, Any] = {"taken_at": taken, "namespace": pipeline.settings.namespace or "(default)"}
    result["services"] = _part(lambda: {"rows": rows(monitor.services(pipeline))})
    result["topics"] = _part(lambda: _topics(pipeline, previous))
    result["lags"] = _part(lambda: {"rows": rows(monitor.job_and_sink_lags(pipeline))})
    result["jobs"] = _part(lambda: {"rows": rows(monitor.flink_jobs(pipeline))})
    result["connectors"] = _part(lambda: {"rows": rows(monitor.connectors(pipeline))})
    result["problems"] = _part(lambda: {"rows": rows(monitor.problems(pipeline))})
    windows = _part(lambda: _windows(pipeline))
    for name in ("pageviews", "errors"):
        if windows["ok"]:
            result[name] = {"ok": True, "rows": windows[name], "days": windows["days"], "basis": windows["basis"]}
        else:
            result[name] = dict(windows)
    result["errors"]["alert_percent"] = pipeline.settings.alert_percent
    result["took_seconds"] = round(time.time() - taken, 2)
    return result


def _topics(pipeline: Pipeline, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Messages per topic, and per second since the previous reading's counts."""
    before, since = {}, None
    if previous and previous["topics"]["ok"]:
        before = {row["topic"]: row["messages"] for row in previous["topics"]["rows"]}
        since = previous["topics"]["counted_at"]
    counts = topic_messages(pipeline.definition, pipeline.kafka)
    counted_at = time.time()
    elapsed = counted_at - since if since else 0.0
    return {
        "counted_at": counted_at,
        "rows": [
            {
                "topic": topic,
                "messages": count,
                "per_second": round((count - before[topic]) / elapsed, 1) if topic in before and elapsed > 0 else None,
            }
            for topic, count in counts.items()
        ],
    }


def _windows(pipeline: Pipeline) -> dict[str, Any]:
    days, basis = monitor.windows_days(pipeline)
    frames = monitor.newest_windows(pipeline, WINDOW_MINUTES, days)
    return {
        "pageviews": rows(frames["pageviews"]),
        "errors": rows(frames["errors"]),
        "days": [day.isoformat() for day in days],
        "basis": basis,
    }


class Readings:
    """Takes a reading every ``every`` seconds in a thread of its own; ``latest`` is the newest."""

    def __init__(self, pipeline: Pipeline, every: float = DEFAULT_EVERY) -> None:
        self.pipeline = pipeline
        self.every = every
        self.latest: dict[str, Any] | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="clicklib-dashboard", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking readings; wait for the one under way (its clients are closed after)."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.latest = {**reading(self.pipeline, self.latest), "every": self.every}
            except Exception as exc:  # the page keeps the last reading and says it is old
                print(f"dashboard: a reading failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self.stopping.wait(max(0.0, self.every - (time.monotonic() - started)))


@web.middleware
async def loopback_only(request: web.Request, handler: Callable) -> web.StreamResponse:
    # The web guard's rules: this machine's name only, and only the dashboard's own page may call.
    reason = refusal(
        request.headers.getall("Host", []), request.headers.getall("Origin", []), request.headers.get("Sec-Fetch-Site")
    )
    if reason:
        return web.Response(status=403, text=f"refused: {reason}\n")
    if request.method not in ("GET", "HEAD"):
        return web.Response(status=405, text="the dashboard only reads: GET its page and /api/reading\n")
    return await handler(request)


def make_app(readings: Readings) -> web.Application:
    app = web.Application(middlewares=[loopback_only])

    async def page(request: web.Request) -> web.Response:
        name = PAGE_FILES[request.path]
        body = resources.web_asset(f"dashboard/{name}").read_bytes()
        content_type = CONTENT_TYPES[name[name.rindex(".") :]]
        return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "no-store"})

    async def latest(_: web.Request) -> web.Response:
        body = readings.latest if readings.latest is not None else {"pending": True, "every": readings.every}
        # allow_nan=False: a NaN would make the page's JSON.parse fail; _json_value turns them into null.
        return web.Response(
            text=json.dumps(body, allow_nan=False),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    for path in PAGE_FILES:
        app.router.add_get(path, page)
    app.router.add_get("/api/reading", latest)
    return app


async def serve(settings: Settings, every: float = DEFAULT_EVERY, ready: Callable[[str], None] | None = None) -> None:
    """Serve the dashboard until SIGTERM or SIGINT."""
    # Each call to a service waits probe_timeout, not request_timeout: a service that hangs delays
    # a reading by seconds, not minutes.
    pipeline = Pipeline(dataclasses.replace(settings, request_timeout=settings.probe_timeout))
    readings = Readings(pipeline, every)
    readings.start()
    runner = web.AppRunner(make_app(readings), access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, HOST, settings.dashboard_port).start()
        except OSError as exc:
            raise ClicklibError(
                f"the dashboard cannot listen on {HOST}:{settings.dashboard_port}: {exc.strerror}. "
                "Stop what uses that port or set CLICKLIB_DASHBOARD_PORT"
            ) from None
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        if ready:
            ready(f"http://{HOST}:{settings.dashboard_port}/")
        await stopping.wait()
    finally:
        await asyncio.to_thread(readings.stop)
        await runner.cleanup()
        pipeline.close()
