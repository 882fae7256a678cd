"""The ingestion edge: an HTTP collector and a UDP bridge in front of the raw topic.

Websites send events from the browser over HTTP (``POST /collect``, or the ``GET /i`` pixel);
the original system's producer sends JSON datagrams over UDP. Both end in the raw topic,
written by the idempotent producer with acks=all. The pipeline does all validation (ksql/):
the collector only forwards, bounds and counts.

- HTTP answers ``202`` only once Kafka has acknowledged every event of the request, so a
  client may forget what it sent. Over its bounds (events in flight) it answers ``503`` with
  ``Retry-After`` instead of queueing without limit; while Kafka is down, requests wait up to
  the delivery timeout, then get ``503`` too. A retried event may be written twice: its
  ``event_id`` makes it count once downstream.
- UDP cannot push back: a datagram over the bounds is dropped and counted as rejected, and
  ``clicklib produce --udp`` compares what it sent with what was forwarded.
- What the server knows replaces what an event says about it: the arrival time and the client's
  address (the request's peer, or behind trusted proxies the client X-Forwarded-For names; the
  datagram's sender over UDP). An address the event brings itself is never forwarded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from clicklib.exceptions import ClicklibError, DiskFullError
from clicklib.settings import Settings
from clicklib.topics import RAW, topic_name

ACCEPTED_TYPES = ("application/json", "text/plain")  # sendBeacon sends a string as text/plain
# The 1x1 transparent GIF the pixel endpoint answers with.
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
# Query parameters of the pixel that are not strings in the event schema.
INTEGER_FIELDS = ("date", "status")
BOOLEAN_FIELDS = ("init_session",)
INTEGER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only: "²" is a digit to str.isdigit
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class Busy(ClicklibError):
    """More events are in flight than the collector may hold: the client should come back later."""


class NotDelivered(ClicklibError):
    """Kafka did not acknowledge an event (down longer than the delivery timeout, or refused)."""


@dataclass
class Metrics:
    """Counters the collector keeps, shown at ``/metrics`` in Prometheus' text format.

    Every counter is written in the event loop only (deliveries are handed over to it from the
    producer's poll thread), so no lock is needed.
    """

    requests: Counter = field(default_factory=Counter)  # (endpoint, status)
    events: Counter = field(default_factory=Counter)  # (endpoint, outcome, reason)
    datagrams: Counter = field(default_factory=Counter)  # outcome
    connections: Counter = field(default_factory=Counter)  # why HTTP connections were closed by the server
    open_connections: int = 0
    delivered: Counter = field(default_factory=Counter)  # (endpoint, outcome)
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe_latency(self, seconds: float) -> None:
        index = next((i for i, bound in enumerate(LATENCY_BUCKETS) if seconds <= bound), len(LATENCY_BUCKETS))
        self.latency[index] += 1
        self.latency_sum += seconds

    def render(self) -> str:
        lines = [
            "# HELP clicklib_collector_requests_total HTTP requests answered, by endpoint and status.",
            "# TYPE clicklib_collector_requests_total counter",
        ]
        lines += [
            f'clicklib_collector_requests_total{{endpoint="{e}",status="{s}"}} {n}'
            for (e, s), n in sorted(self.requests.items())
        ]
        lines += [
            "# HELP clicklib_collector_events_total Events received and rejected, by endpoint and reason.",
            "# TYPE clicklib_collector_events_total counter",
        ]
        lines += [
            f'clicklib_collector_events_total{{endpoint="{e}",outcome="{o}",reason="{_label(r)}"}} {n}'
            for (e, o, r), n in sorted(self.events.items())
        ]
        lines += [
            "# HELP clicklib_collector_delivered_total Events Kafka acknowledged (forwarded) or did not (failed).",
            "# TYPE clicklib_collector_delivered_total counter",
        ]
        lines += [
            f'clicklib_collector_delivered_total{{endpoint="{e}",outcome="{o}"}} {n}'
            for (e, o), n in sorted(self.delivered.items())
        ]
        lines += [
            "# HELP clicklib_collector_datagrams_total UDP datagrams received, forwarded and rejected.",
            "# TYPE clicklib_collector_datagrams_total counter",
        ]
        lines += [f'clicklib_collector_datagrams_total{{outcome="{o}"}} {n}' for o, n in sorted(self.datagrams.items())]
        lines += [
            "# HELP clicklib_collector_connections_open HTTP connections open now.",
            "# TYPE clicklib_collector_connections_open gauge",
            f"clicklib_collector_connections_open {self.open_connections}",
            "# HELP clicklib_collector_connections_refused_total HTTP connections closed at once: as many were open "
            "as the collector may hold.",
            "# TYPE clicklib_collector_connections_refused_total counter",
            f"clicklib_collector_connections_refused_total {self.connections['refused']}",
            "# HELP clicklib_collector_connections_timed_out_total HTTP connections closed for not sending a whole "
            "request head in time (an idle keep-alive connection too).",
            "# TYPE clicklib_collector_connections_timed_out_total counter",
            f"clicklib_collector_connections_timed_out_total {self.connections['timed out']}",
        ]
        lines += [
            "# HELP clicklib_collector_delivery_seconds From handing an event to the producer to Kafka's answer.",
            "# TYPE clicklib_collector_delivery_seconds histogram",
        ]
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.latency, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'clicklib_collector_delivery_seconds_bucket{{le="{le}"}} {running}')
        lines.append(f"clicklib_collector_delivery_seconds_sum {self.latency_sum:.6f}")
        lines.append(f"clicklib_collector_delivery_seconds_count {running}")
        return "\n".join(lines) + "\n"


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def ip_address(text: Any) -> IPAddress | None:
    """The address ``text`` names, or None when it names none. An IPv4 address mapped into IPv6
    (a dual-stack socket's "::ffff:203.0.113.9") is the IPv4 address it carries."""
    if not isinstance(text, str):
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def anonymise(ip: Any) -> str | None:
    """An address with its host part zeroed: the last octet of IPv4, the last 80 bits of IPv6.

    None for anything that is not an address: what cannot be anonymised is not forwarded."""
    address = ip_address(ip)
    if address is None:
        return None
    # From the integer, so that an IPv6 zone ("fe80::1%eth0", naming an interface) goes too.
    if address.version == 4:
        return str(ipaddress.IPv4Address(int(address) >> 8 << 8))
    return str(ipaddress.IPv6Address(int(address) >> 80 << 80))


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[IPNetwork, ...]) -> str | None:
    """The client's address as the server can vouch for it.

    ``peer`` is the TCP peer's address; ``forwarded_for`` the request's X-Forwarded-For values,
    in order (each proxy appends the address it was reached from). Unless the peer is in a
    ``trusted`` network, the peer is the client and X-Forwarded-For is ignored: anyone may send
    it. From a trusted peer the list is walked from the right, past trusted proxies; the first
    address that is not one is the client. An entry that is no address ends the walk: nothing to
    its left can be believed, so the client is the nearest trusted hop to its right (the last
    address checked, or the peer). If every entry is trusted, the leftmost is the client.
    """
    hop = ip_address(peer)
    if hop is None:
        # Not an IP socket: the server's own word, which nothing can be checked against.
        return peer or None
    if not _trusted(hop, trusted):
        return str(hop)
    for entry in reversed(",".join(forwarded_for).split(",")):
        address = ip_address(entry)
        if address is None:
            break
        if not _trusted(address, trusted):
            return str(address)
        hop = address
    return str(hop)


def _trusted(address: IPAddress, trusted: tuple[IPNetwork, ...]) -> bool:
    # An IPv4 address is in no IPv6 network and the other way round: `in` says False.
    return any(address in network for network in trusted)


def user_key(event: Any) -> bytes | None:
    """The Kafka key of an event: its user_id, when it has one."""
    user = event.get("user_id") if isinstance(event, dict) else None
    # The key only places the event on a partition: a lone surrogate must not stop it.
    return user.encode("utf-8", "backslashreplace") if isinstance(user, str) and user else None


def event_key(value: bytes) -> bytes | None:
    """The Kafka key of a raw event: its user_id when it parses and has one."""
    return user_key(datagram_event(value))


def datagram_event(line: bytes) -> dict[str, Any] | None:
    """The JSON object a datagram's line holds, or None when it holds none.

    A line read here is forwarded as it is written again, so only what reads the same both ways
    is read: UTF-8 text (not UTF-16, nor a byte order mark, which json.loads would take), JSON
    without NaN or Infinity, and numbers that stay finite ("1e400" would be written back as
    Infinity, which is no JSON). Anything else goes on as its bytes, for the pipeline to judge.
    """
    try:
        parsed = json.loads(line.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return parsed if isinstance(parsed, dict) else None


def _finite_float(literal: str) -> float:
    number = float(literal)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"{literal} is too large for a double")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"the body holds {name}, which is not JSON")


def parse_body(body: bytes, max_events: int) -> list[dict[str, Any]]:
    """The events of a ``/collect`` body: one JSON object or an array of them.

    Raises ValueError with a reason a client can act on.
    """
    try:
        parsed = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("the body nests too deeply") from None
    except ValueError as exc:  # NaN, Infinity
        raise ValueError(str(exc)) from None
    events = parsed if isinstance(parsed, list) else [parsed]
    if not events:
        raise ValueError("the body is an empty array: send one event or an array of events")
    if len(events) > max_events:
        raise ValueError(f"the body holds {len(events)} events; send at most {max_events} per request")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            where = f"item {index} of the array" if isinstance(parsed, list) else "the body"
            raise ValueError(f"{where} is a JSON {type(event).__name__}, not an event object")
    return events


def pixel_event(query: dict[str, str]) -> dict[str, Any]:
    """One event from the pixel's query string; numbers and booleans typed as the schema says."""
    event: dict[str, Any] = dict(query)
    for name in INTEGER_FIELDS:
        if name in event and INTEGER.fullmatch(event[name]):
            event[name] = int(event[name])
    for name in BOOLEAN_FIELDS:
        if name in event and event[name].lower() in ("true", "1", "false", "0"):
            event[name] = event[name].lower() in ("true", "1")
    return event


def enrich(event: dict[str, Any], ip: str | None, user_agent: str | None, anonymise_ip: bool, now_ms: int) -> bytes:
    """The event as it is forwarded, with what only the server knows put in.

    ``ip`` is the client's address as the server knows it (see client_address), None when it
    knows none. It replaces whatever address the event gives: a client could name any address,
    and with anonymising on, one that is no address at all would pass unanonymised.
    """
    event["collector_date"] = now_ms  # the server's clock, whatever the client sent
    event.pop("ip", None)
    address = anonymise(ip) if ip and anonymise_ip else ip
    if address:
        event["ip"] = address
    if user_agent and not event.get("user_agent"):
        event["user_agent"] = user_agent
    # ASCII escapes: a lone surrogate in a string survives as "\\ud800", and the pipeline
    # dead-letters it with its reason, instead of failing to encode here.
    return json.dumps(event, separators=(",", ":")).encode()


class Forwarder:
    """The one producer of the collector, with the bound on events in flight.

    ``send`` awaits Kafka's answer for a batch (HTTP); ``send_nowait`` hands a batch over and
    only counts the answers (UDP). A thread polls the producer for delivery reports.
    """

    def __init__(
        self,
        producer: Any,
        topic: str,
        limit: int,
        metrics: Metrics,
        on_fatal: Callable[[str], None] | None = None,
        refusal: Callable[[], str | None] | None = None,
    ) -> None:
        self.producer = producer
        # Why no event may be taken in now (Kafka's disk is full), or None: see stack/disk.py.
        self.refusal = refusal
        # Told, from the poll thread, when the producer failed for good (it takes no more events).
        self.on_fatal = on_fatal
        self.topic = topic
        self.limit = limit
        self.metrics = metrics
        self.in_flight = 0  # changed in the event loop only (reserve, and _release via the loop)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="collector-kafka-poll", daemon=True)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.producer.poll(0.05)
            except Exception as exc:  # KafkaException: poll raises for a fatal error only
                # A fatal error ends the producer (every later event would fail too), and
                # without this thread no delivery would be answered: the collector must go.
                error = exc.args[0] if exc.args else None
                if callable(getattr(error, "fatal", None)) and not error.fatal():
                    continue
                if self.on_fatal is not None:
                    self.on_fatal(str(exc))
                return

    def _release(self, count: int) -> None:
        self.in_flight -= count

    def reserve(self, count: int) -> None:
        refused = self.refusal() if self.refusal is not None else None
        if refused:
            raise DiskFullError(refused)
        if self.in_flight + count > self.limit:
            raise Busy(f"{self.in_flight} events are waiting for Kafka already (at most {self.limit})")
        self.in_flight += count

    def _answered(self, endpoint: str, error: str, seconds: float, done: Callable[[str], None]) -> None:
        # In the event loop, the only writer of the delivery counters.
        self.metrics.delivered[(endpoint, "failed" if error else "forwarded")] += 1
        self.metrics.observe_latency(seconds)
        done(error)

    def _produce(self, endpoint: str, records: list[tuple[bytes | None, bytes]], done: Callable[[str], None]) -> None:
        loop, started = self.loop, time.monotonic()

        def report(error: Any, _message: Any) -> None:
            # In the poll thread: hand the outcome to the event loop, which counts it.
            if loop is not None:  # set by start(), before anything is produced
                outcome = "" if error is None else str(error)
                loop.call_soon_threadsafe(self._answered, endpoint, outcome, time.monotonic() - started, done)

        for index, (key, value) in enumerate(records):
            try:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=report)
            except Exception as exc:  # BufferError (queue full), KafkaException (too large, fatal)
                # Nothing more of this batch goes out: answer for the rest, so their slots are freed.
                reason = "the producer's queue is full" if isinstance(exc, BufferError) else str(exc)
                for _ in records[index:]:
                    self._answered(endpoint, reason, time.monotonic() - started, done)
                return

    async def send(self, endpoint: str, records: list[tuple[bytes | None, bytes]]) -> None:
        """Forward ``records`` and return once Kafka acknowledged all; NotDelivered otherwise."""
        assert self.loop is not None
        self.reserve(len(records))
        finished = self.loop.create_future()
        remaining = [len(records)]
        errors: list[str] = []

        def done(error: str) -> None:
            self._release(1)
            if error:
                errors.append(error)
            remaining[0] -= 1
            if remaining[0] == 0 and not finished.done():
                finished.set_result(None)

        self._produce(endpoint, records, done)
        await finished
        if errors:
            raise NotDelivered(f"Kafka did not take {len(errors)} of {len(records)} events: {errors[0]}")

    def send_nowait(self, endpoint: str, records: list[tuple[bytes | None, bytes]]) -> None:
        self.reserve(len(records))
        self._produce(endpoint, records, lambda _error: self._release(1))

    def close(self, timeout: float) -> int:
        """Flush what is in flight; returns how many events were still not delivered."""
        left = self.producer.flush(timeout)
        self._stop.set()
        self._poller.join(timeout=5)
        return left


class UdpBridge(asyncio.DatagramProtocol):
    """Each datagram holds one JSON event or several separated by newlines. An event is forwarded
    as an HTTP one is, with the arrival time and the sender's address put in (trusted proxies do
    not apply: a datagram carries no X-Forwarded-For), keyed by its user_id when it has one. A
    line that is no JSON object is forwarded as the bytes it is: the pipeline dead-letters it
    with the reason."""

    def __init__(self, forwarder: Forwarder, metrics: Metrics, max_bytes: int, *, anonymise_ip: bool) -> None:
        self.forwarder = forwarder
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.anonymise_ip = anonymise_ip

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        metrics = self.metrics
        metrics.datagrams["received"] += 1
        if len(data) > self.max_bytes:
            metrics.datagrams["rejected"] += 1
            metrics.events[("udp", "rejected", f"datagram over {self.max_bytes} bytes")] += 1
            return
        lines = [line for line in data.split(b"\n") if line.strip()]
        metrics.events[("udp", "received", "")] += len(lines)
        if not lines:
            metrics.datagrams["rejected"] += 1
            metrics.events[("udp", "rejected", "empty datagram")] += 1
            return
        # The sender's address in the form HTTP gives it (a mapped IPv4 address as IPv4); a
        # datagram names no proxy hops, so none is trusted.
        sender = client_address(addr[0], [], ())
        now_ms = time.time_ns() // 1_000_000
        records = [self._record(line, sender, now_ms) for line in lines]
        try:
            self.forwarder.send_nowait("udp", records)
        except Busy:
            metrics.datagrams["rejected"] += 1
            metrics.events[("udp", "rejected", "too many events in flight")] += len(lines)
            return
        except DiskFullError:
            metrics.datagrams["rejected"] += 1
            metrics.events[("udp", "rejected", "disk full")] += len(lines)
            return
        metrics.datagrams["forwarded"] += 1

    def _record(self, line: bytes, sender: str | None, now_ms: int) -> tuple[bytes | None, bytes]:
        event = datagram_event(line)  # the one parse of the line: for its key and what is added
        if event is None:
            return None, line
        return user_key(event), enrich(event, sender, None, self.anonymise_ip, now_ms)


@dataclass(frozen=True)
class CollectorConfig:
    """What the collector needs from the settings, in one place."""

    topic: str
    host: str
    http_port: int
    udp_port: int
    max_bytes: int
    max_events: int
    queue_limit: int
    delivery_timeout_ms: int
    origins: frozenset[str]
    anonymise_ip: bool
    trusted_proxies: tuple[IPNetwork, ...] = ()
    header_timeout: float = 10.0  # seconds
    body_timeout: float = 30.0  # seconds
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> CollectorConfig:
        return cls(
            topic=topic_name(settings, RAW),
            host=settings.collector_bind_host,
            http_port=settings.collector_port,
            udp_port=settings.collector_udp_port,
            max_bytes=settings.collector_max_kb * 1024,
            max_events=settings.collector_max_events,
            queue_limit=settings.collector_queue_limit,
            delivery_timeout_ms=int(settings.collector_delivery_timeout_seconds * 1000),
            origins=frozenset(o.strip().rstrip("/") for o in settings.collector_origins.split(",") if o.strip()),
            anonymise_ip=settings.collector_anonymise_ip,
            trusted_proxies=settings.collector_trusted_networks,
            header_timeout=settings.collector_header_timeout_seconds,
            body_timeout=settings.collector_body_timeout_seconds,
            max_connections=settings.collector_max_connections,
        )


def producer_config(config: CollectorConfig) -> dict[str, Any]:
    # Idempotence with acks=all: a retried send is never written twice. The delivery timeout is
    # how long a request waits while Kafka is down before it is told to come back.
    return {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "client.id": "clicklib-collector",
        "message.timeout.ms": config.delivery_timeout_ms,
        "queue.buffering.max.messages": max(config.queue_limit * 2, 100_000),
    }
