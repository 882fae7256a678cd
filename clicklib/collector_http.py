"""The collector's HTTP side (aiohttp) and the process that runs it beside the UDP bridge.

Endpoints: ``POST /collect`` (one event or an array), ``GET /i`` (a 1x1 pixel carrying one event
in its query string), ``GET /tracker.js``, ``/shop/`` (a demo shop with the tracker),
``GET /health`` and ``GET /metrics``. What each answers is in collector.py's docstring and the
README.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from clicklib import resources
from clicklib.collector import (
    ACCEPTED_TYPES,
    PIXEL,
    Busy,
    CollectorConfig,
    Forwarder,
    Metrics,
    NotDelivered,
    UdpBridge,
    enrich,
    parse_body,
    pixel_event,
    producer_config,
    user_key,
)
from clicklib.exceptions import ServiceStartError
from clicklib.kafka import KafkaClient
from clicklib.settings import Settings
from clicklib.stack import process

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes: a burst of about 4,000 events of 1 kB

CONFIG = web.AppKey("config", CollectorConfig)
FORWARDER = web.AppKey("forwarder", Forwarder)
METRICS = web.AppKey("metrics", Metrics)
PRODUCER = web.AppKey("producer", Any)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text(status: int, reason: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers=headers)


def _cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Let the site origins in settings read the answer; any other page may send, not read."""
    origin = request.headers.get("Origin", "").rstrip("/")
    if origin and origin in request.app[CONFIG].origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    endpoint = request.match_info.route.resource.canonical if request.match_info.route.resource else "other"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        request.app[METRICS].requests[(endpoint, str(exc.status))] += 1
        raise
    except Exception:
        # aiohttp answers 500 (without the traceback); the count shows it happened.
        request.app[METRICS].requests[(endpoint, "500")] += 1
        raise
    request.app[METRICS].requests[(endpoint, str(response.status))] += 1
    return response


async def _forward(request: web.Request, endpoint: str, events: list[dict[str, Any]]) -> web.Response | None:
    """Forward events; None once Kafka took them all, else the answer that says why not."""
    config, metrics = request.app[CONFIG], request.app[METRICS]
    now_ms = time.time_ns() // 1_000_000
    user_agent = request.headers.get("User-Agent")
    records = [
        (user_key(event), enrich(event, request.remote, user_agent, config.anonymise_ip, now_ms)) for event in events
    ]
    metrics.events[(endpoint, "received", "")] += len(records)
    try:
        await request.app[FORWARDER].send(endpoint, records)
    except Busy as exc:
        metrics.events[(endpoint, "rejected", "too many events in flight")] += len(records)
        return _text(503, f"the collector is busy: {exc}; send again in a second", **{"Retry-After": "1"})
    except NotDelivered as exc:
        return _text(
            503,
            f"{exc}; nothing of this request is acknowledged: send it again (an event sent twice counts once)",
            **{"Retry-After": "5"},
        )
    return None


def _reject(request: web.Request, endpoint: str, status: int, reason: str, label: str) -> web.Response:
    request.app[METRICS].events[(endpoint, "rejected", label)] += 1
    return _text(status, reason)


async def collect(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    content_type = request.content_type
    if content_type not in ACCEPTED_TYPES:
        return _cors(
            request,
            _reject(
                request,
                "/collect",
                415,
                f"Content-Type {content_type!r} is not accepted; send JSON as application/json or text/plain",
                "content type",
            ),
        )
    if request.content_length is not None and request.content_length > config.max_bytes:
        return _cors(request, _too_large(request, "/collect", request.content_length))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _cors(request, _too_large(request, "/collect", None))
    try:
        events = parse_body(body, config.max_events)
    except ValueError as exc:
        return _cors(request, _reject(request, "/collect", 400, str(exc), "invalid body"))
    refused = await _forward(request, "/collect", events)
    if refused is not None:
        return _cors(request, refused)
    return _cors(request, web.json_response({"accepted": len(events)}, status=202))


def _too_large(request: web.Request, endpoint: str, size: int | None) -> web.Response:
    limit = request.app[CONFIG].max_bytes
    told = f"{size} bytes" if size is not None else "over the limit"
    request.app[METRICS].events[(endpoint, "rejected", "body too large")] += 1
    return _text(413, f"the body is {told}; send at most {limit} bytes per request (split the batch)")


async def preflight(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=204)
    if request.headers.get("Origin", "").rstrip("/") in request.app[CONFIG].origins:
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return _cors(request, response)


async def pixel(request: web.Request) -> web.StreamResponse:
    if not request.query:
        return _reject(request, "/i", 400, "the pixel carries its event in the query string: /i?event_id=...", "empty")
    refused = await _forward(request, "/i", [pixel_event(dict(request.query))])
    if refused is not None:
        return refused
    return web.Response(body=PIXEL, content_type="image/gif", headers={"Cache-Control": "no-store"})


async def tracker(request: web.Request) -> web.StreamResponse:
    script = resources.web_asset("tracker.js")
    return web.Response(
        body=script.read_bytes(),
        content_type="application/javascript",
        charset="utf-8",
        headers={"Cache-Control": "max-age=300"},
    )


async def shop_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"/shop/index.html{'?' + request.query_string if request.query_string else ''}")


async def health(request: web.Request) -> web.StreamResponse:
    """200 while Kafka answers (the raw topic may not exist yet: pipeline up makes it), else 503."""
    config, forwarder = request.app[CONFIG], request.app[FORWARDER]
    producer = request.app[PRODUCER]
    loop = asyncio.get_running_loop()
    try:
        metadata = await loop.run_in_executor(None, lambda: producer.list_topics(timeout=5))
    except Exception as exc:  # the client raises KafkaException and friends
        kafka, exists = f"unreachable: {str(exc)[:120]}", False
    else:
        kafka = "reachable" if metadata.brokers else "no broker answers"
        exists = config.topic in metadata.topics
    body = {
        "topic": config.topic,
        "topic_exists": exists,
        "kafka": kafka,
        "in_flight": forwarder.in_flight,
        "limit": forwarder.limit,
    }
    return web.json_response(body, status=200 if kafka == "reachable" else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(text=request.app[METRICS].render(), content_type="text/plain", charset="utf-8")


def make_app(config: CollectorConfig, forwarder: Forwarder, producer: Any, metrics_: Metrics) -> web.Application:
    # client_max_size bounds what aiohttp reads of a body, whatever its Content-Length says.
    app = web.Application(client_max_size=config.max_bytes, middlewares=[count_requests])
    app[CONFIG], app[FORWARDER], app[PRODUCER], app[METRICS] = config, forwarder, producer, metrics_
    app.router.add_post("/collect", collect)
    app.router.add_route("OPTIONS", "/collect", preflight)
    app.router.add_get("/i", pixel)
    app.router.add_get("/tracker.js", tracker)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    shop = resources.web_asset("shop")
    if shop.is_dir():
        # The folder's own address opens its home page (a static route serves files only).
        app.router.add_get("/shop", shop_home)
        app.router.add_get("/shop/", shop_home)
        app.router.add_static("/shop/", shop, show_index=False)
    return app


async def serve(settings: Settings, ready: Callable[[CollectorConfig], None] | None = None) -> None:
    """Run the collector until SIGTERM or SIGINT; then flush what Kafka has not acknowledged yet."""
    config = CollectorConfig.from_settings(settings)
    loop = asyncio.get_running_loop()
    producer = KafkaClient(settings).producer("producer", **producer_config(config))
    metrics_ = Metrics()
    forwarder = Forwarder(producer, config.topic, config.queue_limit, metrics_)
    forwarder.start(loop)
    # Requests still waiting at a stop get 5 s; their events are flushed below all the same.
    runner = web.AppRunner(make_app(config, forwarder, producer, metrics_), access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, config.host, config.http_port).start()
        except OSError as exc:
            raise _port_taken("HTTP", config.http_port, "CLICKLIB_COLLECTOR_PORT", exc) from None
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpBridge(forwarder, metrics_, config.max_bytes), sock=udp_socket(config.host, config.udp_port)
            )
        except OSError as exc:
            raise _port_taken("UDP", config.udp_port, "CLICKLIB_COLLECTOR_UDP_PORT", exc) from None
        stopping = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        if ready:
            ready(config)
        await stopping.wait()
        transport.close()
    finally:
        try:
            await runner.cleanup()
        finally:
            # What Kafka has not acknowledged yet gets up to the delivery timeout to be.
            left = await loop.run_in_executor(None, forwarder.close, config.delivery_timeout_ms / 1000)
            if left:
                print(f"collector: {left} events were not acknowledged by Kafka when it stopped", file=sys.stderr)


def _port_taken(kind: str, port: int, variable: str, exc: OSError) -> ServiceStartError:
    return ServiceStartError(
        f"collector: cannot listen for {kind} on port {port} ({exc.strerror}); stop what holds it or set {variable}",
        service="collector",
    )


def udp_socket(host: str, port: int) -> socket.socket:
    """The bridge's socket, with a receive buffer for bursts: datagrams that arrive while the
    loop is busy wait there instead of being dropped by the kernel (which caps the size at
    net.core.rmem_max)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def spawn(settings: Settings, log_path: Path, timeout: float = 60.0) -> subprocess.Popen:
    """A collector process of its own for ``settings`` (its namespace, ports and bounds), once it
    answers; for the benchmark and the tests, beside the stack's. Stop it with SIGTERM."""
    import requests

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clicklib.collector_http"],
            env={**os.environ, **settings.to_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        try:
            requests.get(f"{settings.collector_url}/metrics", timeout=2)
            return True
        except requests.RequestException:  # refused, or something else holds the port and is silent
            return False

    try:
        process.wait_answering(proc, answers, "collector", log_path, timeout)
    except ServiceStartError:
        proc.kill()
        raise
    return proc


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[Settings]:
    """Settings whose collector writes into this namespace's raw topic: the stack's own when it
    does (it serves the namespace it was started with), else one started on free ports for as
    long as the block runs."""
    import requests

    topic = CollectorConfig.from_settings(settings).topic
    try:
        if requests.get(f"{settings.collector_url}/health", timeout=5).json().get("topic") == topic:
            yield settings
            return
    except (requests.RequestException, ValueError):
        pass  # no collector there, or not one of ours
    # Both held at once, so the two free ports differ.
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        ports = [first.getsockname()[1], second.getsockname()[1]]
    own = dataclasses.replace(settings, collector_port=ports[0], collector_udp_port=ports[1])
    proc = spawn(own, settings.home / "logs" / f"collector-{settings.namespace or 'default'}-{ports[0]}.log")
    try:
        yield own
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=own.collector_delivery_timeout_seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    """The collector as a process of the local stack: settings from the environment."""
    settings = Settings.from_env()

    def ready(config: CollectorConfig) -> None:
        print(
            f"collector: HTTP on {config.host}:{config.http_port}, UDP on {config.host}:{config.udp_port}, "
            f"into {config.topic}",
            flush=True,
        )

    asyncio.run(serve(settings, ready))


if __name__ == "__main__":
    main()
