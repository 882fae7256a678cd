"""The collector's HTTP side (aiohttp) and the process that runs it beside the UDP bridge.

Endpoints: ``POST /collect`` (one event or an array), ``GET /i`` (a 1x1 pixel carrying one event
in its query string), ``GET /tracker.js``, ``/shop/`` (a demo shop with the tracker),
``GET /health`` and ``GET /metrics``. What each answers is in collector.py's docstring and the
README.

aiohttp's server bounds neither how many connections it holds nor how long a client may take to
send a request: ConnectionGuard does both, so slow clients cannot hold every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
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
    client_address,
    enrich,
    parse_body,
    pixel_event,
    producer_config,
    user_key,
)
from clicklib.exceptions import ClicklibError, DiskFullError, KafkaError, ServiceStartError
from clicklib.kafka import KafkaClient
from clicklib.settings import Settings
from clicklib.stack import disk, process
from clicklib.stack.web_guard import refusal

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes: a burst of about 4,000 events of 1 kB
SWEEP_SECONDS = 1.0  # how often connections are checked for a request head overdue

CONFIG = web.AppKey("config", CollectorConfig)
FORWARDER = web.AppKey("forwarder", Forwarder)
METRICS = web.AppKey("metrics", Metrics)
PRODUCER = web.AppKey("producer", Any)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass
class _Connection:
    transport: asyncio.BaseTransport
    # Since when (time.monotonic) the connection awaits a request head; None while one is handled.
    awaiting_head_since: float | None


class ConnectionGuard:
    """At most ``max_connections`` HTTP connections at once, each sending a whole request head
    within ``header_timeout`` seconds.

    A connection over the bound is closed as soon as it is made. A connection awaits a request
    head from when it is made and again from each answer (the middleware watch_heads says when);
    one that has awaited longer than the header timeout is closed, by a sweep every
    SWEEP_SECONDS. A client that sends half a request line, or trickles header lines, is thus
    closed as one that sends nothing is; an idle keep-alive connection too (aiohttp would keep it
    an hour), which costs a client that comes back later a new connection, nothing more.
    """

    def __init__(self, max_connections: int, header_timeout: float, metrics: Metrics) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.metrics = metrics
        # By the aiohttp protocol serving each, which a request names (request.protocol).
        self._open: dict[asyncio.BaseProtocol, _Connection] = {}
        self._sweeper: asyncio.Task | None = None

    def protocol_factory(self, serve: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        """A factory for loop.create_server: ``serve`` (aiohttp's) behind the guard."""
        return lambda: _GuardedProtocol(self, serve)

    def admit(self, transport: asyncio.BaseTransport, serve: Callable[[], asyncio.BaseProtocol]) -> Any:
        """The protocol that serves a new connection, or None when as many are open as may be."""
        if len(self._open) >= self.max_connections:
            self.metrics.connections["refused"] += 1
            return None
        protocol = serve()
        self._open[protocol] = _Connection(transport, time.monotonic())
        self.metrics.open_connections = len(self._open)
        return protocol

    def closed(self, protocol: asyncio.BaseProtocol) -> None:
        self._open.pop(protocol, None)
        self.metrics.open_connections = len(self._open)

    def head_received(self, protocol: asyncio.BaseProtocol) -> None:
        connection = self._open.get(protocol)  # None when served without the guard
        if connection is not None:
            connection.awaiting_head_since = None

    def answered(self, protocol: asyncio.BaseProtocol) -> None:
        # From when the handler answers, not when the answer is written: a client that does not
        # read its answer is closed as one that does not send its request. The collector's
        # answers are a few kB, which the socket's buffer takes at once.
        connection = self._open.get(protocol)
        if connection is not None:
            connection.awaiting_head_since = time.monotonic()

    def close_overdue(self, now: float) -> None:
        """Close every connection that has awaited a request head longer than the header timeout."""
        for connection in list(self._open.values()):
            since = connection.awaiting_head_since
            if since is not None and now - since > self.header_timeout:
                connection.awaiting_head_since = None  # counted once, while the close goes through
                self.metrics.connections["timed out"] += 1
                connection.transport.abort()  # not close(): that would wait to write what it holds

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.close_overdue(time.monotonic())

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="collector-head-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None


class _GuardedProtocol(asyncio.Protocol):
    """One connection: admitted by the guard, then served by aiohttp's protocol, which is handed
    every event of the transport."""

    def __init__(self, guard: ConnectionGuard, serve: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._serve = serve
        self._served: Any = None  # aiohttp's RequestHandler, once admitted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._served = self._guard.admit(transport, self._serve)
        if self._served is None:
            transport.abort()
            return
        self._served.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._served is not None:
            self._guard.closed(self._served)
            self._served.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._served is not None:
            self._served.data_received(data)

    def eof_received(self) -> bool | None:
        return self._served.eof_received() if self._served is not None else None

    def pause_writing(self) -> None:
        if self._served is not None:
            self._served.pause_writing()

    def resume_writing(self) -> None:
        if self._served is not None:
            self._served.resume_writing()


GUARD = web.AppKey("guard", ConnectionGuard)


@web.middleware
async def watch_heads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the guard a request head came in on the connection, and when it is answered."""
    guard = request.app[GUARD]
    guard.head_received(request.protocol)
    try:
        return await handler(request)
    finally:
        guard.answered(request.protocol)


class GuardedSite(web.BaseSite):
    """aiohttp's server on a listening socket made beforehand, each connection behind the app's
    ConnectionGuard (web.TCPSite would hand connections to aiohttp's protocol directly)."""

    __slots__ = ("_sock",)

    def __init__(self, runner: web.AppRunner, sock: socket.socket) -> None:
        super().__init__(runner)
        self._sock = sock

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None and isinstance(self._runner, web.AppRunner)
        factory = self._runner.app[GUARD].protocol_factory(server)
        self._server = await asyncio.get_running_loop().create_server(factory, sock=self._sock, backlog=self._backlog)


async def start_http(app: web.Application, sockets: list[socket.socket]) -> web.AppRunner:
    """Serve ``app`` (from make_app) on listening sockets until the runner's cleanup()."""
    # Requests still waiting at a stop get 5 s; their events are flushed all the same.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        for sock in sockets:
            await GuardedSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        for sock in sockets:
            sock.close()  # those not served yet (closing twice does no harm)
        raise
    return runner


async def _start_guard(app: web.Application) -> None:
    app[GUARD].start()


async def _stop_guard(app: web.Application) -> None:
    await app[GUARD].stop()


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
    ip = client_address(request.remote, request.headers.getall("X-Forwarded-For", []), config.trusted_proxies)
    records = [(user_key(event), enrich(event, ip, user_agent, config.anonymise_ip, now_ms)) for event in events]
    metrics.events[(endpoint, "received", "")] += len(records)
    try:
        await request.app[FORWARDER].send(endpoint, records)
    except Busy as exc:
        metrics.events[(endpoint, "rejected", "too many events in flight")] += len(records)
        return _text(503, f"the collector is busy: {exc}; send again in a second", **{"Retry-After": "1"})
    except DiskFullError as exc:
        # Nothing is acknowledged that Kafka may not be able to keep; a minute is how long
        # freeing space takes at the least.
        metrics.events[(endpoint, "rejected", "disk full")] += len(records)
        return _text(503, f"the collector takes no events: {exc}", **{"Retry-After": "60"})
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
        # Bounded, or a client that says 100 bytes and sends 10 holds its connection for good.
        body = await asyncio.wait_for(request.read(), config.body_timeout)
    except web.HTTPRequestEntityTooLarge:
        return _cors(request, _too_large(request, "/collect", None))
    except TimeoutError:
        refused = _reject(
            request,
            "/collect",
            408,
            f"the body did not arrive within {config.body_timeout:g} s; nothing of it was forwarded: send it again",
            "body timeout",
        )
        refused.force_close()  # what is left of the body would be read as the next request
        return _cors(request, refused)
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
    """200 while Kafka answers and takes events (the raw topic may not exist yet: pipeline up
    makes it), else 503: Kafka unreachable, or its disk too full to take more."""
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
    refused = forwarder.refusal() if forwarder.refusal is not None else None
    body = {
        "topic": config.topic,
        "topic_exists": exists,
        "kafka": kafka,
        "in_flight": forwarder.in_flight,
        "limit": forwarder.limit,
        "refusing": refused or "",
    }
    return web.json_response(body, status=200 if kafka == "reachable" and not refused else 503)


def _is_loopback_peer(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.StreamResponse:
    # The counters describe the site's traffic and the pipeline's failures: for this machine's
    # monitoring, not for the web the collector serves. A page in the user's browser is held to
    # the web guard's rules (a rebound Host, a foreign Origin), another machine is refused.
    reason = refusal(
        request.headers.getall("Host", []), request.headers.getall("Origin", []), request.headers.get("Sec-Fetch-Site")
    )
    if not reason and not _is_loopback_peer(request):
        reason = f"/metrics is served to this machine only, not to {request.remote}"
    if reason:
        return _text(403, f"refused: {reason}")
    return web.Response(text=request.app[METRICS].render(), content_type="text/plain", charset="utf-8")


def make_app(config: CollectorConfig, forwarder: Forwarder, producer: Any, metrics_: Metrics) -> web.Application:
    # client_max_size bounds what aiohttp reads of a body, whatever its Content-Length says.
    app = web.Application(client_max_size=config.max_bytes, middlewares=[watch_heads, count_requests])
    app[CONFIG], app[FORWARDER], app[PRODUCER], app[METRICS] = config, forwarder, producer, metrics_
    app[GUARD] = ConnectionGuard(config.max_connections, config.header_timeout, metrics_)
    app.on_startup.append(_start_guard)
    app.on_cleanup.append(_stop_guard)
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
    producer = KafkaClient(settings, "producer").producer("producer", **producer_config(config))
    metrics_ = Metrics()
    stopping = asyncio.Event()
    fatal: list[str] = []

    def producer_failed(reason: str) -> None:
        # From the poll thread. The collector stops, so that the stack's supervisor starts a new
        # one with a new producer; until then its clients get no answer and send again.
        fatal.append(reason)
        loop.call_soon_threadsafe(stopping.set)

    space = disk.guard(settings)
    forwarder = Forwarder(
        producer,
        config.topic,
        config.queue_limit,
        metrics_,
        on_fatal=producer_failed,
        refusal=space.refusal if space is not None else None,
    )
    forwarder.start(loop)
    runner: web.AppRunner | None = None
    try:
        try:
            sockets = tcp_sockets(config.host, config.http_port)
        except OSError as exc:
            raise _port_taken("HTTP", config.http_port, "CLICKLIB_COLLECTOR_PORT", exc) from None
        runner = await start_http(make_app(config, forwarder, producer, metrics_), sockets)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: UdpBridge(forwarder, metrics_, config.max_bytes, anonymise_ip=config.anonymise_ip),
                sock=udp_socket(config.host, config.udp_port),
            )
        except OSError as exc:
            raise _port_taken("UDP", config.udp_port, "CLICKLIB_COLLECTOR_UDP_PORT", exc) from None
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        if ready:
            ready(config)
        await stopping.wait()
        transport.close()
    finally:
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            # What Kafka has not acknowledged yet gets up to the delivery timeout to be.
            left = await loop.run_in_executor(None, forwarder.close, config.delivery_timeout_ms / 1000)
            if left:
                print(f"collector: {left} events were not acknowledged by Kafka when it stopped", file=sys.stderr)
    if fatal:
        raise KafkaError(
            f"collector: its Kafka producer failed for good ({fatal[0]}); it stopped, and the stack's "
            "supervisor starts it again",
            settings.bootstrap_servers,
        )


def _port_taken(kind: str, port: int, variable: str, exc: OSError) -> ServiceStartError:
    return ServiceStartError(
        f"collector: cannot listen for {kind} on port {port} ({exc.strerror}); stop what holds it or set {variable}",
        service="collector",
    )


def tcp_sockets(host: str, port: int) -> list[socket.socket]:
    """The HTTP side's listening sockets, bound as web.TCPSite (asyncio's create_server) binds
    them: one for each address ``host`` names, reusing an address a past run left in TIME_WAIT,
    an IPv6 one for IPv6 only (so that "localhost" binds 127.0.0.1 and ::1 without a clash)."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        ):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


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

    try:
        asyncio.run(serve(settings, ready))
    except ClicklibError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
