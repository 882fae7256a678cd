"""The collector's HTTP side against slow and greedy clients: the real aiohttp app, served in this
process on 127.0.0.1 as serve() serves it, with a Kafka producer that answers at once."""

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import signal
import socket
import time

from clicklib import collector_http
from clicklib.collector import CollectorConfig, Forwarder, Metrics
from clicklib.settings import Settings
from tests.integration.conftest import free_ports

CONFIG = CollectorConfig(
    topic="raw",
    host="127.0.0.1",
    http_port=0,
    udp_port=0,
    max_bytes=4096,
    max_events=10,
    queue_limit=100,
    delivery_timeout_ms=5000,
    origins=frozenset(),
    anonymise_ip=False,
    header_timeout=1.0,
    body_timeout=1.0,
    max_connections=3,
)
# Generous: the machine may be busy with other tests. What is checked is that a closing comes,
# and not before its time.
PATIENCE = 8.0


class AnsweringProducer:
    """Kafka acknowledging every message at once; the collector's only part replaced."""

    def __init__(self):
        self.messages = []

    def produce(self, topic, value, key, on_delivery):
        self.messages.append((topic, key, value))
        on_delivery(None, None)

    def poll(self, timeout):
        time.sleep(timeout)

    def flush(self, timeout):
        return 0


@dataclasses.dataclass
class Collector:
    port: int
    metrics: Metrics
    producer: AnsweringProducer

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def until_open(self, count: int) -> None:
        """Until the server holds ``count`` connections: a connect returns before it sees it."""
        deadline = time.monotonic() + PATIENCE
        while self.metrics.open_connections != count:
            assert time.monotonic() < deadline, f"{self.metrics.open_connections} connections open, not {count}"
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serving(**overrides):
    config = dataclasses.replace(CONFIG, **overrides)
    metrics, producer = Metrics(), AnsweringProducer()
    forwarder = Forwarder(producer, config.topic, config.queue_limit, metrics)
    forwarder.start(asyncio.get_running_loop())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = collector_http.make_app(config, forwarder, producer, metrics)
    runner = await collector_http.start_http(app, [sock])
    try:
        yield Collector(sock.getsockname()[1], metrics, producer)
    finally:
        await runner.cleanup()
        forwarder.close(1)


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """An HTTP/1.1 request's bytes; a header named Content_Type in ``headers`` is Content-Type."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
    status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), PATIENCE)
    return int(status_line.split()[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bytes:
    """What the server still sends until it closes the connection (it must, within PATIENCE)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(4096), PATIENCE):
            received += chunk
    return received


def run(scenario):
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_client_that_never_finishes_its_request_head_is_disconnected_after_the_header_timeout():
    async def scenario():
        async with serving(header_timeout=1.0) as collector:
            started = time.monotonic()  # before the server can see the connection
            reader, writer = await collector.connect()
            writer.write(b"GET /health HT")
            assert await closed(reader) == b""
            assert time.monotonic() - started >= 1.0
            assert collector.metrics.connections["timed out"] == 1
            await collector.until_open(0)
            writer.close()

    run(scenario)


def test_a_head_trickled_a_line_at_a_time_is_disconnected_too():
    # Sending something all the time does not help: the whole head must be in within the timeout.
    async def scenario():
        async with serving(header_timeout=1.0) as collector:
            started = time.monotonic()  # before the server can see the connection
            reader, writer = await collector.connect()
            writer.write(b"GET /health HTTP/1.1\r\n")
            while time.monotonic() - started < PATIENCE:
                try:
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()
                    if await asyncio.wait_for(reader.read(1), 0.2) == b"":
                        break
                except TimeoutError:
                    continue
                except ConnectionError:
                    break
            assert 1.0 <= time.monotonic() - started < PATIENCE
            assert collector.metrics.connections["timed out"] == 1
            writer.close()

    run(scenario)


def test_over_max_connections_a_new_one_is_closed_at_once_and_served_again_once_others_close():
    async def scenario():
        # A long header timeout: the three held connections must stay while the fourth comes.
        async with serving(max_connections=3, header_timeout=60.0) as collector:
            held = [await collector.connect() for _ in range(3)]
            await collector.until_open(3)
            started = time.monotonic()
            reader, writer = await collector.connect()
            assert await closed(reader) == b""
            assert time.monotonic() - started < PATIENCE
            assert collector.metrics.connections["refused"] == 1
            writer.close()
            # The three are served all the while.
            for held_reader, held_writer in held:
                held_writer.write(request("GET", "/tracker.js"))
                assert (await answer(held_reader))[0] == 200
            for _, held_writer in held:
                held_writer.close()
            await collector.until_open(0)
            reader, writer = await collector.connect()
            writer.write(request("GET", "/tracker.js"))
            assert (await answer(reader))[0] == 200
            assert collector.metrics.connections["refused"] == 1
            writer.close()

    run(scenario)


def test_a_body_that_stops_coming_gets_408_after_the_body_timeout():
    async def scenario():
        async with serving(body_timeout=1.0, header_timeout=1.0) as collector:
            reader, writer = await collector.connect()
            head = request("POST", "/collect", Content_Type="application/json").replace(
                b"Content-Length: 0", b"Content-Length: 100"
            )
            started = time.monotonic()
            writer.write(head + b'[{"a": 1},')  # 10 of the 100 bytes
            status, headers, body = await answer(reader)
            assert 1.0 <= time.monotonic() - started < PATIENCE
            assert status == 408 and headers.get("connection") == "close"
            assert body.decode() == "the body did not arrive within 1 s; nothing of it was forwarded: send it again\n"
            assert collector.metrics.events[("/collect", "rejected", "body timeout")] == 1
            assert collector.metrics.requests[("/collect", "408")] == 1
            assert collector.producer.messages == []
            # aiohttp would read what is left of the body for 10 s more (lingering, so that the
            # answer is not lost to a reset); from the answer on, the header timeout bounds that.
            assert await closed(reader) == b""
            assert collector.metrics.connections["timed out"] == 1
            writer.close()

    run(scenario)


def test_a_keep_alive_client_gets_every_answer_on_one_connection_until_it_idles_past_the_header_timeout():
    async def scenario():
        async with serving(header_timeout=1.0) as collector:
            reader, writer = await collector.connect()
            for n in (1, 2):
                event = json.dumps({"event_id": f"e{n}", "user_id": "u1", "ip": "6.6.6.6"}).encode()
                writer.write(request("POST", "/collect", event, Content_Type="application/json"))
                status, headers, body = await answer(reader)
                assert (status, json.loads(body)) == (202, {"accepted": 1})
                assert headers.get("connection", "keep-alive").lower() != "close"
                assert collector.metrics.open_connections == 1
            # The request's address, not the one the event claims.
            assert [json.loads(value)["ip"] for _, _, value in collector.producer.messages] == ["127.0.0.1"] * 2
            # Idle past the header timeout, it is closed like a client that sends nothing.
            assert await closed(reader) == b""
            assert collector.metrics.connections["timed out"] == 1
            writer.close()

    run(scenario)


def test_x_forwarded_for_names_the_client_only_when_the_peer_is_a_trusted_proxy():
    async def scenario(trusted, expected):
        async with serving(trusted_proxies=trusted) as collector:
            reader, writer = await collector.connect()
            event = json.dumps({"event_id": "e1"}).encode()
            forwarded_for = {"X_Forwarded_For": "198.51.100.1, 203.0.113.9"}
            writer.write(request("POST", "/collect", event, Content_Type="text/plain", **forwarded_for))
            assert (await answer(reader))[0] == 202
            [(_, _, value)] = collector.producer.messages
            assert json.loads(value)["ip"] == expected
            writer.close()

    run(lambda: scenario((), "127.0.0.1"))
    run(lambda: scenario((ipaddress.ip_network("127.0.0.0/8"),), "203.0.113.9"))


def test_the_http_sockets_bind_every_address_of_the_host_and_a_taken_port_fails():
    sockets = collector_http.tcp_sockets("127.0.0.1", 0)
    try:
        [sock] = sockets
        port = sock.getsockname()[1]
        sock.listen()
        try:
            collector_http.tcp_sockets("127.0.0.1", port)
        except OSError as exc:
            assert exc.errno is not None
        else:
            raise AssertionError(f"port {port} was bound twice")
    finally:
        for sock in sockets:
            sock.close()


def test_serve_puts_the_guard_the_trusted_proxies_and_anonymising_in_place(tmp_path, monkeypatch):
    producer = AnsweringProducer()
    monkeypatch.setattr(collector_http.KafkaClient, "producer", lambda self, *args, **config: producer)
    http_port, udp_port = free_ports(2)
    settings = Settings(
        home=tmp_path,
        collector_port=http_port,
        collector_udp_port=udp_port,
        collector_anonymise_ip=True,
        collector_trusted_proxies="127.0.0.1",
        collector_max_connections=1,
    )

    async def scenario():
        ready = asyncio.Event()
        served = asyncio.create_task(collector_http.serve(settings, lambda config: ready.set()))
        await asyncio.wait_for(ready.wait(), PATIENCE)
        reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
        event = json.dumps({"event_id": "h1", "ip": "6.6.6.6"}).encode()
        writer.write(request("POST", "/collect", event, Content_Type="text/plain", X_Forwarded_For="203.0.113.9"))
        assert (await answer(reader))[0] == 202
        # The one connection allowed is held: another is closed at once.
        second_reader, second_writer = await asyncio.open_connection("127.0.0.1", http_port)
        assert await closed(second_reader) == b""
        second_writer.close()
        writer.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b'{"event_id": "u1", "ip": "6.6.6.6"}', ("127.0.0.1", udp_port))
        deadline = time.monotonic() + PATIENCE
        while len(producer.messages) < 2:
            assert time.monotonic() < deadline, producer.messages
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # serve() stops on it, as the stack stops it
        await asyncio.wait_for(served, PATIENCE)

    run(scenario)
    forwarded = {json.loads(value)["event_id"]: json.loads(value)["ip"] for _, _, value in producer.messages}
    assert forwarded == {"h1": "203.0.113.0", "u1": "127.0.0.0"}
