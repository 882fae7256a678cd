"""The collector as a real process against the real Kafka: what it forwards, what it refuses and
with which status, what it counts, and what it does while Kafka is away."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from clicklib import analysis, collector_http, produce, stack
from clicklib.generate import generate
from clicklib.kafka import KafkaClient
from clicklib.pipeline import Pipeline
from clicklib.settings import Settings
from clicklib.topics import RAW, topic_name
from tests.browser import DevTools
from tests.checks import table

from .conftest import free_ports


@dataclasses.dataclass
class Collector:
    settings: Settings
    process: subprocess.Popen
    url: str

    def metric(self, name: str, **labels: str) -> int:
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        return next((int(float(line.split()[-1])) for line in text.splitlines() if line.startswith(wanted + " ")), 0)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(settings: Settings, **overrides) -> Collector:
    http, udp = free_ports(1)[0], free_udp_port()
    settings = dataclasses.replace(settings, collector_port=http, collector_udp_port=udp, **overrides)
    proc = collector_http.spawn(settings, settings.home / "logs" / f"collector-test-{http}.log")
    return Collector(settings, proc, settings.collector_url)


def stop_collector(collector: Collector) -> int:
    collector.process.send_signal(signal.SIGTERM)
    return collector.process.wait(timeout=90)


@pytest.fixture
def topics(namespaced_pipeline: Pipeline) -> Pipeline:
    """A fresh namespace with its topics and nothing else: the collector needs no job or connector."""
    namespaced_pipeline.create_topics()
    return namespaced_pipeline


@pytest.fixture
def collector(topics: Pipeline) -> Iterator[Collector]:
    """A collector writing into a fresh namespace's raw topic."""
    started = start_collector(topics.settings, collector_max_kb=4, collector_max_events=20)
    yield started
    assert stop_collector(started) == 0


def raw_values(settings: Settings) -> list[tuple[bytes | None, bytes]]:
    kafka = KafkaClient(settings)
    return [(m.key(), m.value()) for m in kafka.read_since(topic_name(settings, RAW), {})]


def event(i: int, user: str | None = "u1") -> dict:
    return {"event_id": f"e{i}", "user_id": user, "event": "pageview", "date": 1_700_000_000_000 + i}


def test_a_batch_is_acknowledged_once_in_kafka_with_what_the_server_knows(collector: Collector):
    sent = [event(1), event(2, None)]
    answer = requests.post(f"{collector.url}/collect", json=sent, headers={"User-Agent": "TestAgent/1"}, timeout=30)
    assert answer.status_code == 202 and answer.json() == {"accepted": 2}
    # Acknowledged means written: read at once, both are there.
    stored = {json.loads(value)["event_id"]: (key, json.loads(value)) for key, value in raw_values(collector.settings)}
    assert set(stored) == {"e1", "e2"}
    key, first = stored["e1"]
    assert key == b"u1" and stored["e2"][0] is None
    assert first["ip"] == "127.0.0.1" and first["user_agent"] == "TestAgent/1"
    assert abs(first["collector_date"] - time.time() * 1000) < 60_000
    assert collector.metric("clicklib_collector_delivered_total", endpoint="/collect", outcome="forwarded") == 2


def test_the_pixel_carries_one_event_in_its_query(collector: Collector):
    answer = requests.get(
        f"{collector.url}/i", params={"event_id": "p1", "user_id": "u2", "date": "1700000000000", "status": "200"}
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif" and answer.content[:3] == b"GIF"
    [(key, value)] = raw_values(collector.settings)
    stored = json.loads(value)
    assert key == b"u2" and stored["date"] == 1_700_000_000_000 and stored["status"] == 200


@pytest.mark.parametrize(
    ("request_args", "status", "says", "reason"),
    [
        ({"data": b"{}", "headers": {"Content-Type": "application/xml"}}, 415, "Content-Type", "content type"),
        ({"data": b'[{"a": 1}', "headers": {"Content-Type": "application/json"}}, 400, "not JSON", "invalid body"),
        ({"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 400, "not an event", "invalid body"),
        ({"json": [{"n": i} for i in range(21)]}, 400, "at most 20 per request", "invalid body"),
        (
            {"data": b"[" + b"{}," * 3000 + b"{}]", "headers": {"Content-Type": "text/plain"}},
            413,
            "at most 4096 bytes",
            "body too large",
        ),
    ],
)
def test_bad_input_gets_its_status_and_reason_and_nothing_reaches_kafka(collector, request_args, status, says, reason):
    answer = requests.post(f"{collector.url}/collect", timeout=30, **request_args)
    assert answer.status_code == status and says in answer.text
    assert (
        collector.metric("clicklib_collector_events_total", endpoint="/collect", outcome="rejected", reason=reason) == 1
    )
    assert raw_values(collector.settings) == []


def test_a_chunked_body_over_the_limit_is_refused_too(collector: Collector):
    # No Content-Length to check first: the limit holds on what is read.
    answer = requests.post(
        f"{collector.url}/collect", data=iter([b"[", b"{}," * 3000, b"{}]"]), headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 413


def test_datagram_events_get_what_the_server_knows_and_oversized_ones_are_counted(collector: Collector):
    address = ("127.0.0.1", collector.settings.collector_udp_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(json.dumps(event(1)).encode() + b"\n" + json.dumps(event(2, "u9")).encode(), address)
        sock.sendto(b"{not json", address)
        sock.sendto(b"x" * 5000, address)
    deadline = time.monotonic() + 30
    while collector.metric("clicklib_collector_delivered_total", endpoint="udp", outcome="forwarded") < 3:
        assert time.monotonic() < deadline, "the bridge did not forward 3 events within 30 s"
        time.sleep(0.2)
    stored = raw_values(collector.settings)
    # What is no JSON object goes on as its bytes: the pipeline, not the bridge, dead-letters it.
    assert len(stored) == 3 and (None, b"{not json") in stored
    # An event gets what the server knows, as over HTTP: the sender's address, the arrival time.
    events = [(key, json.loads(value)) for key, value in stored if value != b"{not json"]
    forwarded = {stored_event["event_id"]: (key, stored_event) for key, stored_event in events}
    for sent, key in ((event(1), b"u1"), (event(2, "u9"), b"u9")):
        stored_key, stored_event = forwarded[sent["event_id"]]
        assert stored_key == key
        assert stored_event == {**sent, "ip": "127.0.0.1", "collector_date": stored_event["collector_date"]}
        assert abs(stored_event["collector_date"] - time.time() * 1000) < 60_000
    assert collector.metric("clicklib_collector_datagrams_total", outcome="rejected") == 1
    assert (
        collector.metric(
            "clicklib_collector_events_total", endpoint="udp", outcome="rejected", reason="datagram over 4096 bytes"
        )
        == 1
    )


def test_twenty_thousand_datagrams_at_two_thousand_a_second_are_all_accounted_for(topics: Pipeline):
    collector = start_collector(topics.settings)
    try:
        workload = generate(20_000, seed=12, invalid_ratio=0.02)
        address = ("127.0.0.1", collector.settings.collector_udp_port)
        pipeline = Pipeline(collector.settings)
        report = produce.produce_udp(pipeline, workload, address, rate=2_000)
    finally:
        assert stop_collector(collector) == 0
    assert report.sent == 20_000 and 9 < report.seconds < 15
    in_kafka = len(raw_values(collector.settings))
    # Whatever UDP dropped, the collector's count is what Kafka holds, and the summary says the rest.
    assert report.forwarded == in_kafka and report.lost == report.sent - in_kafka
    if report.lost:
        assert f"{report.lost:,} lost on the way" in report.summary()
    else:
        assert f"forwarded all {in_kafka:,}" in report.summary()


def test_a_flood_gets_503_with_retry_after_instead_of_a_growing_queue(topics: Pipeline):
    # A Kafka that never answers: every event stays in flight, so the bound is reached.
    nowhere = f"127.0.0.1:{free_ports(1)[0]}"
    collector = start_collector(
        topics.settings, bootstrap_servers=nowhere, collector_queue_limit=30, collector_delivery_timeout="3 s"
    )
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda i: requests.post(f"{collector.url}/collect", json=[event(i * 10 + j) for j in range(10)]),
                    range(8),
                )
            )
    finally:
        assert stop_collector(collector) == 0
    statuses = sorted(a.status_code for a in answers)
    busy = [a for a in answers if "busy" in a.text]
    # Three requests fit the bound and wait for Kafka; the others are told to come back.
    assert len(busy) == 5 and all(a.status_code == 503 and a.headers["Retry-After"] == "1" for a in busy)
    # Those that waited were never acknowledged: 503 once the delivery timeout passed.
    assert statuses == [503] * 8
    assert all("send it again" in a.text for a in answers if a not in busy)


def test_events_sent_while_kafka_is_down_are_acknowledged_once_it_is_back(isolated_settings: Settings):
    settings = dataclasses.replace(isolated_settings, collector_delivery_timeout="120 s")
    stack.up(settings, ["kafka"])
    try:
        Pipeline(settings).create_topics()
        collector = start_collector(settings)
        try:
            stack.down(settings, ["kafka"])
            answers: list[requests.Response] = []
            sender = threading.Thread(
                target=lambda: answers.append(
                    requests.post(f"{collector.url}/collect", json=[event(i) for i in range(5)], timeout=150)
                )
            )
            sender.start()
            time.sleep(5)
            assert answers == [], "answered while Kafka was down"
            stack.up(settings, ["kafka"])
            sender.join(timeout=150)
            assert answers and answers[0].status_code == 202
            assert sorted(json.loads(v)["event_id"] for _, v in raw_values(settings)) == [f"e{i}" for i in range(5)]
        finally:
            assert stop_collector(collector) == 0
    finally:
        stack.down(settings)


def test_a_person_clicking_through_the_shop_is_one_session_that_reaches_purchase(running_pipeline: Pipeline, tmp_path):
    user = f"shopper-{uuid.uuid4().hex[:6]}"
    collector = start_collector(running_pipeline.settings)
    browser = DevTools(tmp_path / "profile")
    try:
        # The shop's own address, as the README gives it: it opens the home page.
        browser.open(f"{collector.url}/shop/?user={user}")
        assert browser.evaluate("location.pathname") == "/shop/index.html"
        for link in (
            'main a[href="category.html"]',
            'main a[href="product.html"]',
            '[data-track="add_to_cart"]',
            'main a[href="checkout.html"]',
            '[data-track="purchase"]',
        ):
            browser.click_and_load(link)
        # The purchase page's own view is sent at once; wait until the collector took it.
        deadline = time.monotonic() + 60
        while browser.evaluate("window.clicklib ? window.clicklib.pending() : -1") != 0:
            assert time.monotonic() < deadline, "the tracker still holds events after 60 s"
            time.sleep(0.2)
    finally:
        browser.close()
        assert stop_collector(collector) == 0
    running_pipeline.close_windows()

    events = table(running_pipeline, "events_by_user")
    mine = events[events["user_id"] == user].sort_values("date")
    views = mine[mine["event"] == "pageview"]
    assert list(views["page_type"]) == ["home", "category", "productDetail", "cart", "checkout", "purchase"]
    assert {"add_to_cart", "purchase"} <= set(mine["event"])
    assert mine["session_id"].nunique() == 1
    assert mine["current_url"].str.startswith(f"{collector.url}/shop/").all()

    summary = table(running_pipeline, "session_summary")
    session = summary[summary["user_id"] == user]
    assert len(session) == 1 and bool(session["purchased"].iloc[0])
    funnel = analysis.funnel_of_sessions(session).set_index("step")
    assert funnel.loc["purchase", "did"] == 1


def test_a_collector_killed_mid_stream_loses_nothing_it_acknowledged(topics: Pipeline):
    collector = start_collector(topics.settings)
    acknowledged: list[str] = []
    refused = [0]
    sending = threading.Event()
    sending.set()

    def client() -> None:
        batch = 0
        while sending.is_set():
            ids = [f"k{batch}-{i}" for i in range(20)]
            try:
                answer = requests.post(
                    f"{collector.url}/collect", json=[{"event_id": e, "user_id": "u1"} for e in ids], timeout=30
                )
            except requests.RequestException:
                refused[0] += 1  # cut off or down: not acknowledged, a client sends the batch again later
                time.sleep(0.05)
                continue
            if answer.status_code == 202:
                acknowledged.extend(ids)
                batch += 1

    sender = threading.Thread(target=client)
    sender.start()
    try:
        time.sleep(3)
        before_kill = len(acknowledged)
        os.kill(collector.process.pid, signal.SIGKILL)
        collector.process.wait(timeout=10)
        time.sleep(1)
        collector.process = collector_http.spawn(
            collector.settings, collector.settings.home / "logs" / "collector-again.log"
        )
        time.sleep(3)
    finally:
        sending.clear()
        sender.join(timeout=60)
        assert stop_collector(collector) == 0
    assert before_kill > 0 and len(acknowledged) > before_kill and refused[0] > 0
    stored = {json.loads(value)["event_id"] for _, value in raw_values(collector.settings)}
    # Every batch answered 202 is in Kafka; what the kill cut off was never acknowledged.
    assert set(acknowledged) <= stored
